"""`RetryPolicy`: how one client retries, backs off, times out and logs, for plain calls and for
streams alike. Built from the client's options; `AsyncClient.with_options()` derives another.

The clocks, `sleep` and the random source are fields, so tests drive every schedule (backoff,
throttles, stalls) on a fake clock instead of waiting for real time to pass.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Final

from attrs import Factory, field, frozen

if TYPE_CHECKING:
    from ._config import ClientOptions

from ._constants import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_INTERVAL_S,
    DEFAULT_STALL_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    LOGGER_NAME,
    MAX_RETRY_AFTER_S,
    MAX_RETRY_DELAY_S,
    MIN_RETRY_AFTER_S,
)
from ._exceptions import SparkSdkError
from ._retry import backoff_delay, parse_retry_after

__all__ = ["RetryPolicy", "Sleep", "check_retries", "make_logger", "seconds"]

Sleep = Callable[[float], Awaitable[None]]

_SILENT: Final = logging.Logger(f"{LOGGER_NAME}.silent")  # unregistered: no global logger touched
_SILENT.addHandler(logging.NullHandler())
_SILENT.propagate = False


def make_logger(value: logging.Logger | bool | None) -> logging.Logger:
    """The SDK's logger from the `logger=` option: a Logger, False (silent) or None/True."""
    if isinstance(value, logging.Logger):
        return value
    if value is False:
        return _SILENT
    if value is None or value is True:
        return logging.getLogger(LOGGER_NAME)
    # A level name ("debug") or a LoggerAdapter would otherwise be dropped without a word.
    raise SparkSdkError(
        "logger must be a logging.Logger, False (silence the SDK) or None (the "
        f"'{LOGGER_NAME}' logger), got {value!r}"
    )


def seconds(
    name: str, *, allow_none: bool = False, allow_zero: bool = False
) -> Callable[[object, object, float | None], None]:
    """An attrs validator: a finite number of seconds (> 0, or >= 0), or None when allowed."""

    def check(_inst: object, _attr: object, value: float | None) -> None:
        if value is None and allow_none:
            return
        ok = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and (value >= 0 if allow_zero else value > 0)
        )
        if not ok:
            what = "a number of seconds >= 0" if allow_zero else "a positive number of seconds"
            none = " or None" if allow_none else ""
            raise SparkSdkError(f"{name} must be {what}{none}, got {value!r}")

    return check


def check_retries(_inst: object, _attr: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SparkSdkError(
            f"max_retries must be an integer >= 0 (0 disables retries), got {value!r}"
        )


@frozen(kw_only=True)
class RetryPolicy:
    """Retries, backoff, timeouts and logging for every request of one client, and for its
    streams.

    Attributes:
        max_retries: retries after the first attempt of a failed call (0: none). In a stream:
            per push and per pull, and how often a chunk whose result was lost is pushed again.
        retry_interval: backoff base; retry n waits U(0, min(backoff_cap, interval * 2**n)).
        backoff_cap: the longest computed backoff.
        retry_after_floor, retry_after_cap: a server's Retry-After is raised to the floor (a
            `Retry-After: 0` must not turn into a tight loop) and cut at the cap.
        timeout: seconds one attempt may take (None: no limit).
        stall_timeout: a stream with records outstanding that receives no result for this
            long, or whose pushes are throttled without pause for this long, fails.
        logger: where the SDK logs (a silent logger for `logger=False`).
        clock: monotonic seconds; wall_clock: POSIX seconds (for HTTP-date Retry-After).
        sleep, rng: how to wait and where jitter comes from.
    """

    max_retries: int = field(default=DEFAULT_MAX_RETRIES, validator=check_retries)
    retry_interval: float = field(
        default=DEFAULT_RETRY_INTERVAL_S, validator=seconds("retry_interval", allow_zero=True)
    )
    backoff_cap: float = field(default=MAX_RETRY_DELAY_S, validator=seconds("backoff_cap"))
    retry_after_floor: float = field(
        default=MIN_RETRY_AFTER_S, validator=seconds("retry_after_floor", allow_zero=True)
    )
    retry_after_cap: float = field(default=MAX_RETRY_AFTER_S, validator=seconds("retry_after_cap"))
    timeout: float | None = field(
        default=DEFAULT_TIMEOUT_S, validator=seconds("timeout", allow_none=True)
    )
    stall_timeout: float = field(
        default=DEFAULT_STALL_TIMEOUT_S, validator=seconds("stall_timeout")
    )
    logger: logging.Logger = field(factory=lambda: logging.getLogger(LOGGER_NAME), repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    wall_clock: Callable[[], float] = field(default=time.time, repr=False)
    sleep: Sleep = field(default=asyncio.sleep, repr=False)
    rng: random.Random = field(default=Factory(random.Random), repr=False)

    def backoff(self, retries: int) -> float:
        """Seconds to wait before retry `retries + 1` (full jitter, capped)."""
        return backoff_delay(
            retries, interval=self.retry_interval, rng=self.rng, cap=self.backoff_cap
        )

    def retry_after(self, headers: Mapping[str, str]) -> float | None:
        """The server's requested wait, floored and capped; None when it asked for none."""
        delay = parse_retry_after(headers, now=self.wall_clock(), cap=self.retry_after_cap)
        return None if delay is None else max(delay, self.retry_after_floor)

    @classmethod
    def from_options(cls, options: ClientOptions, logger: logging.Logger) -> RetryPolicy:
        """The policy an `AsyncClient` with these options and this logger uses."""
        return cls(
            max_retries=options.max_retries,
            retry_interval=options.retry_interval,
            timeout=options.timeout,
            logger=logger,
        )

    def delay(self, retries: int, retry_after: float | None) -> float:
        """The wait before a retry: the server's request when it made one, else backoff."""
        if retry_after is not None:
            return max(retry_after, self.retry_after_floor)
        return self.backoff(retries)
