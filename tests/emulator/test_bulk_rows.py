"""A service's `rows_fn` (the bulk form) answers what its per-record `fn` would, over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cspark_async.emulator import Emulator, Service, echo, echo_rows

from .conftest import Api, chunk


def double(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("x") == "boom":
        raise ValueError("x must be a number")
    return {"y": record["x"] * 2, "x": record["x"]}


def double_rows(header: list[str], rows: list[list[Any]]) -> tuple[list[str], list[list[Any]]]:
    at = header.index("x")
    return ["y", "x"], [[row[at] * 2, row[at]] for row in rows]


def strict_double_rows(
    header: list[str], rows: list[list[Any]]
) -> tuple[list[str], list[list[Any]]]:
    at = header.index("x")
    if any(not isinstance(row[at], int) for row in rows):
        raise ValueError("a record is not a number")
    return double_rows(header, rows)


SERVICES = {
    "t/echo-bulk": Service("t/echo-bulk", echo, rows_fn=echo_rows),
    "t/echo": Service("t/echo", echo),
    "t/double-bulk": Service("t/double-bulk", double, rows_fn=strict_double_rows),
    "t/double": Service("t/double", double),
    "t/short": Service("t/short", double, rows_fn=lambda h, r: (["y"], [[1]] * (len(r) - 1))),
    "t/not-json": Service(
        "t/not-json", lambda r: {"y": {1}}, rows_fn=lambda h, r: (["y"], [[{1}]] * len(r))
    ),
}


@pytest.fixture
async def bulk_api() -> AsyncIterator[Api]:
    emulator = Emulator(services=SERVICES, compress_responses=False)
    async with emulator as emu, aiohttp.ClientSession() as session:
        yield Api(session, emu)


async def run(api: Api, service: str, inputs: list[Any], **data: Any) -> dict[str, Any]:
    batch_id = await api.create(service)
    await api.push(batch_id, chunk("c", inputs, **data))
    (result,) = await api.drain(batch_id, 1)
    return dict(result)


def same_but_timing(bulk: dict[str, Any], single: dict[str, Any]) -> None:
    assert len(bulk["process_time"]) == len(single["process_time"])
    assert all(isinstance(t, float) and t >= 0 for t in bulk["process_time"])
    assert {k: v for k, v in bulk.items() if k != "process_time"} == {
        k: v for k, v in single.items() if k != "process_time"
    }


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.text(max_size=5),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.lists(st.sampled_from(["a", "b", "c", "id", "x"]), min_size=1, max_size=4),
    values=st.lists(json_values, min_size=0, max_size=40),
    params=st.sampled_from([None, {"p": 1}, {"a": 0}]),
)
@example(header=["a", "a"], values=[1, 2], params=None)  # a repeated name: the last value wins
async def test_bulk_echo_answers_what_record_by_record_echo_does(
    bulk_api: Api, header: list[str], values: list[Any], params: dict[str, Any] | None
) -> None:
    # Repeated column names, parameters and empty chunks take the per-record path: same answer.
    width = len(header)
    rows = [values[i : i + width] for i in range(0, len(values) - width + 1, width)]
    inputs = [header, *rows]
    data = {} if params is None else {"parameters": params}
    same_but_timing(
        await run(bulk_api, "t/echo-bulk", inputs, **data),
        await run(bulk_api, "t/echo", inputs, **data),
    )


async def test_a_raising_rows_fn_falls_back_to_per_record_errors(bulk_api: Api) -> None:
    inputs = [["x"], [1], ["boom"], [3]]
    bulk = await run(bulk_api, "t/double-bulk", inputs)
    same_but_timing(bulk, await run(bulk_api, "t/double", inputs))
    assert bulk["outputs"] == [["y", "x"], [2, 1], None, [6, 3]]
    assert bulk["errors"][1] == {"error_type": "ValueError", "message": "x must be a number"}


async def test_rows_come_back_in_the_bulk_form_when_every_record_succeeds(bulk_api: Api) -> None:
    result = await run(bulk_api, "t/double-bulk", [["x", "z"], [1, 0], [5, 0]])
    assert result["outputs"] == [["y", "x"], [2, 1], [10, 5]]
    assert result["errors"] == result["warnings"] == [None, None]


async def test_a_rows_fn_with_the_wrong_shape_fails_its_chunk_naming_the_service(
    bulk_api: Api,
) -> None:
    result = await run(bulk_api, "t/short", [["x"], [1], [2]])
    assert result["outputs"] == [[], None, None]  # every record of the chunk failed
    for error in result["errors"]:
        assert error["error_type"] == "TypeError"
        assert "rows_fn of service 't/short' returned 1 rows for 2 records" in error["message"]


async def test_outputs_json_cannot_carry_are_per_record_errors_on_the_bulk_path(
    bulk_api: Api,
) -> None:
    result = await run(bulk_api, "t/not-json", [["x"], [1], [2]])
    assert [e["error_type"] for e in result["errors"]] == ["TypeError", "TypeError"]
    assert "output is not JSON" in result["errors"][0]["message"]


async def test_simulated_latency_is_in_each_records_share(make_api: Any) -> None:
    async with make_api(record_latency=0.002, compress_responses=False) as api:
        result = await run(api, "my-folder/my-service", [["x"], [1], [2], [3]])
    assert result["outputs"] == [["x"], [1], [2], [3]]
    assert all(2.0 <= t < 50.0 for t in result["process_time"])
    assert all(round(t, 3) == t for t in result["process_time"])  # milliseconds to the microsecond
