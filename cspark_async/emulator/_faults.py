"""Seeded, reproducible fault injection for the emulator's API routes."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any, Final, Literal

from attrs import field, frozen, validators

__all__ = ["ENDPOINTS", "FaultAction", "FaultInjector", "Faults"]

ENDPOINTS: Final = frozenset({"describe", "create", "info", "status", "push", "pull", "patch"})

FaultAction = Literal[
    "none", "rate_limit", "server_error", "reset_before", "reset_after", "error_after"
]

_probability = validators.and_(
    validators.instance_of((int, float)), validators.ge(0.0), validators.le(1.0)
)


def _endpoint_set(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


@frozen(kw_only=True)
class Faults:
    """Per-request fault probabilities, drawn from one RNG seeded with `seed`.

    Args:
        seed: makes a run reproducible (same requests in the same order, same faults).
        rate_limit: probability of a 429 with `Retry-After` / `x-retry-after` of `retry_after` s.
        server_error: probability of a 5xx, its status drawn from `server_error_statuses`.
        reset_before: probability that the connection drops before the request is applied.
        reset_after: probability that the request is applied and then the connection drops, so
            the client never sees the answer.
        error_after: probability that the request is applied and then answered with a 5xx from
            `error_after_statuses` (by default 502 or 504: a gateway that gave up waiting for a
            service that did the work), so a create made a batch and a push queued its chunks.
        latency: probability of an added delay of `latency_s` seconds before the request runs.
        endpoints: which routes may fail (names in `ENDPOINTS`); None means all of them.
    """

    seed: int = field(default=0, validator=validators.instance_of(int))
    rate_limit: float = field(default=0.0, validator=_probability)
    retry_after: float = field(default=0.05, validator=validators.ge(0))
    server_error: float = field(default=0.0, validator=_probability)
    server_error_statuses: tuple[int, ...] = field(default=(500, 502, 503, 504), converter=tuple)
    reset_before: float = field(default=0.0, validator=_probability)
    reset_after: float = field(default=0.0, validator=_probability)
    error_after: float = field(default=0.0, validator=_probability)
    error_after_statuses: tuple[int, ...] = field(default=(502, 504), converter=tuple)
    latency: float = field(default=0.0, validator=_probability)
    latency_s: float = field(default=0.0, validator=validators.ge(0))
    endpoints: frozenset[str] | None = field(default=None, converter=_endpoint_set)

    @server_error_statuses.validator
    @error_after_statuses.validator
    def _check_statuses(self, attr: Any, value: tuple[int, ...]) -> None:
        if not value or not all(isinstance(s, int) and 500 <= s <= 599 for s in value):
            raise ValueError(f"{attr.name} must be 5xx statuses, got {list(value)}")

    @endpoints.validator
    def _check_endpoints(self, _attr: object, value: frozenset[str] | None) -> None:
        unknown = (value or frozenset()) - ENDPOINTS
        if unknown:
            raise ValueError(f"unknown endpoints {sorted(unknown)}; known: {sorted(ENDPOINTS)}")

    @property
    def active(self) -> bool:
        return any(
            (
                self.rate_limit,
                self.server_error,
                self.reset_before,
                self.reset_after,
                self.error_after,
                self.latency,
            )
        )


class FaultInjector:
    """Draws the fault, if any, for each request in arrival order."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.configure(faults or Faults())

    def configure(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self.injected: dict[str, int] = {}

    def draw(self, endpoint: str) -> tuple[FaultAction, float, int]:
        """(action, delay in seconds, status for a server error) for one request."""
        f = self.faults
        if not f.active or (f.endpoints is not None and endpoint not in f.endpoints):
            return "none", 0.0, 0
        rng = self._rng
        delay = f.latency_s if rng.random() < f.latency else 0.0
        roll = rng.random()
        action: FaultAction = "none"
        status = 0
        for name, p in (
            ("reset_before", f.reset_before),
            ("rate_limit", f.rate_limit),
            ("server_error", f.server_error),
            ("reset_after", f.reset_after),
            ("error_after", f.error_after),
        ):
            if roll < p:
                action = name  # type: ignore[assignment]
                break
            roll -= p
        if action == "server_error":
            status = rng.choice(f.server_error_statuses)
        elif action == "error_after":
            status = rng.choice(f.error_after_statuses)
        if action != "none":
            self.injected[action] = self.injected.get(action, 0) + 1
        return action, delay, status
