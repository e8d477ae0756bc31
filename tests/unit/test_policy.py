"""RetryPolicy and with_options(): one policy from the client, for plain calls and streams."""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import random

import attrs
import pytest

import cspark_async as sdk
from cspark_async import AsyncClient, RetryPolicy
from cspark_async._records import encode_json
from cspark_async._streaming._counters import Counters, count


def test_the_policy_is_built_from_the_clients_options() -> None:
    spark = AsyncClient("http://h/t", api_key="k", timeout=5, max_retries=4, retry_interval=0.5)
    policy = spark.policy
    assert (policy.timeout, policy.max_retries, policy.retry_interval) == (5, 4, 0.5)
    assert policy.logger is logging.getLogger("cspark_async")
    silent = AsyncClient("http://h/t", api_key="k", logger=False).policy.logger
    assert not silent.propagate


def test_retry_after_is_floored_and_capped() -> None:
    policy = RetryPolicy(retry_after_floor=0.1, retry_after_cap=30)
    assert policy.retry_after({"Retry-After": "0"}) == 0.1
    assert policy.retry_after({"x-retry-after": "0.0"}) == 0.1
    assert policy.retry_after({"Retry-After": "9999"}) == 30
    assert policy.retry_after({}) is None
    assert policy.delay(3, 0.0) == 0.1  # a zero from the server still waits


def test_backoff_is_full_jitter_under_the_cap() -> None:
    policy = RetryPolicy(retry_interval=1.0, backoff_cap=4.0, rng=random.Random(1))
    delays = [policy.backoff(n) for n in range(8)]
    assert all(0 <= d <= min(4.0, 2.0**n) for n, d in enumerate(delays))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_retries", -1, "max_retries must be an integer >= 0"),
        ("stall_timeout", 0, "stall_timeout must be a positive number of seconds"),
        ("timeout", math.inf, "timeout must be a positive number of seconds or None"),
        ("retry_after_floor", -0.1, "retry_after_floor must be a number of seconds >= 0"),
    ],
)
def test_bad_policy_values_are_refused(field: str, value: float, message: str) -> None:
    with pytest.raises(sdk.SparkSdkError, match=message):
        RetryPolicy(**{field: value})


async def test_with_options_shares_the_session_and_changes_only_what_it_names() -> None:
    async with AsyncClient("http://h/t", api_key="k", max_retries=2) as spark:
        patient = spark.with_options(max_retries=7, timeout=300, stall_timeout=60)
        assert (patient.policy.max_retries, patient.policy.timeout) == (7, 300)
        assert patient.policy.stall_timeout == 60
        assert patient.policy.retry_interval == spark.policy.retry_interval
        assert spark.policy.max_retries == 2  # the original is untouched
        assert patient._http._pool is spark._http._pool  # one session, one token cache
        assert patient._http.auth is spark._http.auth
        quiet = spark.with_options(logger=False)
        assert not quiet.policy.logger.propagate
        await patient.close()
        assert spark.is_closed  # closing either closes the shared session


def test_with_options_refuses_bad_values() -> None:
    spark = AsyncClient("http://h/t", api_key="k")
    with pytest.raises(sdk.SparkSdkError, match="max_retries"):
        spark.with_options(max_retries=-1)
    with pytest.raises(sdk.SparkSdkError, match="policy must be a RetryPolicy"):
        spark.with_options(policy="fast")  # type: ignore[arg-type]
    custom = attrs.evolve(spark.policy, stall_timeout=5)
    assert spark.with_options(policy=custom).policy.stall_timeout == 5


@pytest.mark.parametrize("field", ["api_key", "token"])
@pytest.mark.parametrize("bad", ["k\r\nx-evil: 1", "k\nx", "k\x00"])
def test_a_credential_with_cr_or_lf_is_refused_at_construction(field: str, bad: str) -> None:
    with pytest.raises(sdk.SparkSdkError, match=f"{field} contains a control character") as info:
        AsyncClient("http://h/t", **{field: bad})
    assert bad not in str(info.value)


class Level(enum.Enum):
    HIGH = math.inf


@dataclasses.dataclass
class Point:
    x: float


@pytest.mark.parametrize(
    "record",
    [
        pytest.param({"p": Point(math.nan)}, id="nan-in-dataclass"),
        pytest.param({"level": Level.HIGH}, id="inf-in-enum"),
        pytest.param({"ps": [Point(1.0), Point(-math.inf)]}, id="inf-in-nested-dataclass"),
    ],
)
def test_nan_and_infinity_are_refused_wherever_orjson_finds_them(record: object) -> None:
    with pytest.raises(sdk.SparkSdkError, match="NaN and Infinity"):
        encode_json(record, "record at offset 0")  # type: ignore[arg-type]


def test_finite_dataclasses_and_enums_still_go() -> None:
    assert encode_json({"p": Point(1.5)}, "r") == b'{"p":{"x":1.5}}'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3),
        ("3", 3),
        (" 12 ", 12),
        (2.0, 2),
        (-1, None),
        ("-1", None),
        ("n/a", None),
        (None, None),
        (True, None),
        (1.5, None),
        ([], None),
    ],
)
def test_counters_are_read_defensively(value: object, expected: int | None) -> None:
    assert count(value) == expected


def test_counters_know_when_they_are_usable() -> None:
    idle = Counters.read(
        {"chunks_available": "0", "workers_in_use": 0, "input_buffer_used_bytes": 0}
    )
    assert idle.known
    assert idle.idle
    missing = Counters.read({"chunks_available": 0, "workers_in_use": 0})
    assert not missing.known
    assert not missing.idle  # unknown is never a false zero
