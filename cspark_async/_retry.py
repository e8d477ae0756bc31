"""Retry maths, pure: which statuses to retry, how long a server asked to wait, and backoff.

No I/O and no clocks of its own: the RNG and "now" are injected, so every rule is table-tested.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Final

from ._constants import MAX_RETRY_AFTER_S, MAX_RETRY_DELAY_S

__all__ = [
    "NOT_APPLIED_STATUSES",
    "RETRYABLE_STATUSES",
    "backoff_delay",
    "parse_retry_after",
    "should_retry",
]

# 408 and 429 are transient by definition; 5xx are too, except 501 (the server never will).
RETRYABLE_STATUSES: Final = frozenset({408, 429} | (set(range(500, 600)) - {501}))
# Statuses that say the request was not applied, so that even a create may be sent again:
# the server timed out reading it (408), refused it for now (429) or was not serving (503).
# A 500, 502 or 504 may come after the work was done.
NOT_APPLIED_STATUSES: Final = frozenset({408, 429, 503})


def should_retry(status: int) -> bool:
    """True for statuses worth another attempt: 408, 429 and 5xx except 501."""
    return status in RETRYABLE_STATUSES


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_retry_after(
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    cap: float = MAX_RETRY_AFTER_S,
) -> float | None:
    """Seconds the server asked to wait, capped at `cap`; None when it did not say (usably).

    `x-retry-after` (float seconds) wins over `Retry-After` (seconds, or an HTTP date resolved
    against `now`, a POSIX timestamp). Negative, NaN, infinite and unparsable values are ignored.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    delay: float | None = None
    precise = lowered.get("x-retry-after")
    if precise is not None:
        delay = _seconds(precise.strip())
    standard = lowered.get("retry-after")
    if delay is None and standard is not None:
        standard = standard.strip()
        delay = _seconds(standard)
        if delay is None and now is not None:
            try:
                when = parsedate_to_datetime(standard)
            except (TypeError, ValueError, IndexError):
                when = None
            if when is not None and when.tzinfo is not None:
                delay = max(0.0, when.timestamp() - now)
    return None if delay is None else min(delay, cap)


def backoff_delay(
    attempt: int,
    *,
    interval: float,
    rng: random.Random,
    cap: float = MAX_RETRY_DELAY_S,
) -> float:
    """Exponential backoff with full jitter: U(0, min(cap, interval * 2**attempt)).

    `attempt` counts retries already made (0 before the first retry). Large attempts saturate
    at `cap` instead of overflowing.
    """
    if attempt < 0 or interval <= 0:
        return 0.0
    ceiling = cap if attempt >= 64 else min(cap, interval * 2.0**attempt)
    return rng.uniform(0.0, ceiling)
