"""Retry maths: which statuses retry, Retry-After parsing, backoff with full jitter."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cspark_async._constants import MAX_RETRY_AFTER_S, MAX_RETRY_DELAY_S
from cspark_async._retry import backoff_delay, parse_retry_after, should_retry


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(200, False, id="ok"),
        pytest.param(400, False, id="bad-request"),
        pytest.param(401, False, id="unauthorized"),
        pytest.param(404, False, id="not-found"),
        pytest.param(409, False, id="conflict"),
        pytest.param(413, False, id="too-large-never-fits"),
        pytest.param(408, True, id="request-timeout"),
        pytest.param(429, True, id="rate-limited"),
        pytest.param(500, True, id="internal"),
        pytest.param(501, False, id="not-implemented"),
        pytest.param(502, True, id="bad-gateway"),
        pytest.param(503, True, id="unavailable"),
        pytest.param(504, True, id="gateway-timeout"),
        pytest.param(599, True, id="other-5xx"),
    ],
)
def test_should_retry(status: int, expected: bool) -> None:
    assert should_retry(status) is expected


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()


def _http_date(offset_s: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset_s, tz=timezone.utc), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, None, id="none"),
        pytest.param({"Retry-After": "3"}, 3.0, id="int-seconds"),
        pytest.param({"retry-after": "1.5"}, 1.5, id="float-seconds-lowercase"),
        pytest.param({"x-retry-after": "0.250"}, 0.25, id="x-retry-after"),
        pytest.param({"Retry-After": "1", "x-retry-after": "0.05"}, 0.05, id="x-wins"),
        pytest.param({"Retry-After": "2", "x-retry-after": "junk"}, 2.0, id="bad-x-falls-back"),
        pytest.param({"Retry-After": "0"}, 0.0, id="zero"),
        pytest.param({"Retry-After": "-1"}, None, id="negative"),
        pytest.param({"Retry-After": "nan"}, None, id="nan"),
        pytest.param({"Retry-After": "inf"}, None, id="inf"),
        pytest.param({"Retry-After": "soon"}, None, id="garbage"),
        pytest.param({"Retry-After": "121"}, MAX_RETRY_AFTER_S, id="capped"),
        pytest.param({"Retry-After": "1e9"}, MAX_RETRY_AFTER_S, id="huge-capped"),
        pytest.param({"Retry-After": _http_date(7)}, 7.0, id="http-date"),
        pytest.param({"Retry-After": _http_date(-30)}, 0.0, id="http-date-in-past"),
        pytest.param({"Retry-After": "Fri, 99 Foo 2026 25:61:00 GMT"}, None, id="bad-date"),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == pytest.approx(expected)


def test_parse_retry_after_custom_cap() -> None:
    assert parse_retry_after({"Retry-After": "30"}, now=NOW, cap=5.0) == 5.0


class _FixedRng(random.Random):
    """uniform(a, b) returns the top of the range, so the ceiling itself is tested."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.mark.parametrize(
    ("attempt", "interval", "expected"),
    [
        pytest.param(0, 1.0, 1.0, id="first-retry"),
        pytest.param(1, 1.0, 2.0, id="second-retry"),
        pytest.param(2, 0.5, 2.0, id="third-retry-half-second-base"),
        pytest.param(4, 1.0, 16.0, id="fifth"),
        pytest.param(5, 1.0, MAX_RETRY_DELAY_S, id="capped"),
        pytest.param(10_000, 1.0, MAX_RETRY_DELAY_S, id="no-overflow"),
        pytest.param(3, 0.0, 0.0, id="zero-interval"),
        pytest.param(-1, 1.0, 0.0, id="negative-attempt"),
    ],
)
def test_backoff_ceiling(attempt: int, interval: float, expected: float) -> None:
    assert backoff_delay(attempt, interval=interval, rng=_FixedRng()) == expected


def test_backoff_is_full_jitter_from_the_injected_rng() -> None:
    first = [backoff_delay(n, interval=1.0, rng=random.Random(7)) for n in range(4)]
    again = [backoff_delay(n, interval=1.0, rng=random.Random(7)) for n in range(4)]
    assert first == again  # reproducible from the RNG's seed
    delays = [backoff_delay(3, interval=1.0, rng=random.Random(seed)) for seed in range(200)]
    assert min(delays) < 1.0
    assert max(delays) > 7.0


@given(
    attempt=st.integers(min_value=0, max_value=2000),
    interval=st.floats(min_value=0.001, max_value=100.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_bounds(attempt: int, interval: float, seed: int) -> None:
    delay = backoff_delay(attempt, interval=interval, rng=random.Random(seed))
    assert 0.0 <= delay <= min(MAX_RETRY_DELAY_S, interval * 2.0 ** min(attempt, 64))
