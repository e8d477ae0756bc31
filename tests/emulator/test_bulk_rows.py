"""A service's `rows_fn` (the bulk form) answers what its per-record `fn` would, over HTTP."""

from __future__ import annotations

import collections
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


class Spy:
    """`echo_rows` that counts its calls: a test can tell the bulk path was taken."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, header: list[str], rows: list[list[Any]]) -> tuple[list[str], Any]:
        self.calls += 1
        return echo_rows(header, rows)


def refuse(record: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError("the per-record path ran")


SPY = Spy()
Pair = collections.namedtuple("Pair", "a b")


async def async_rows(header: list[str], rows: list[list[Any]]) -> Any:
    return header, rows


SERVICES = {
    "t/spy": Service("t/spy", echo, rows_fn=SPY),
    "t/bulk-only": Service("t/bulk-only", refuse, rows_fn=echo_rows),
    "t/async-rows": Service("t/async-rows", echo, rows_fn=async_rows),  # type: ignore[arg-type]
    "t/list-pair": Service("t/list-pair", echo, rows_fn=lambda h, r: [h, r]),  # type: ignore[arg-type,return-value]
    "t/namedtuples": Service(
        "t/namedtuples", echo, rows_fn=lambda h, r: (["a", "b"], [Pair(*row) for row in r])
    ),
    "t/twice-y": Service("t/twice-y", echo, rows_fn=lambda h, r: (["y", "y"], r)),
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


async def run(
    api: Api, service: str, inputs: list[Any], create: dict[str, Any] | None = None, **data: Any
) -> dict[str, Any]:
    """The one chunk's result, with the batch's summary counters (under `"batch"`)."""
    batch_id = await api.create(service, **(create or {}))
    await api.push(batch_id, chunk("c", inputs, **data))
    (result,) = await api.drain(batch_id, 1)
    info = await api.ok("GET", f"/{batch_id}")
    return {**result, "batch": info["data"]["summary"]}


def same_but_timing(bulk: dict[str, Any], single: dict[str, Any]) -> None:
    assert len(bulk["process_time"]) == len(single["process_time"])
    bulk, single = dict(bulk), dict(single)
    for result in (bulk, single):  # counters alike, ids and times aside
        result["batch"] = {
            k: v for k, v in result["batch"].items() if k.startswith(("records", "chunks"))
        }
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
    calls = SPY.calls
    bulk = await run(bulk_api, "t/spy", inputs, **data)
    same_but_timing(bulk, await run(bulk_api, "t/echo", inputs, **data))
    used = params is None and bool(rows) and len(set(header)) == len(header)
    assert SPY.calls == calls + used  # the bulk form answers exactly the chunks it can


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


async def test_a_chunk_that_qualifies_never_runs_record_by_record(bulk_api: Api) -> None:
    result = await run(bulk_api, "t/bulk-only", [["x", "y"], [1, 2], [3, 4], [5, 6]])
    assert result["outputs"] == [["x", "y"], [1, 2], [3, 4], [5, 6]]
    assert result["errors"] == [None, None, None]
    assert len(set(result["process_time"])) == 1  # an equal share each


@pytest.mark.parametrize(
    ("service", "problem"),
    [
        ("t/async-rows", "a coroutine: rows_fn must be a plain function"),
        ("t/twice-y", "a header that repeats a name"),
    ],
)
async def test_an_answer_fn_could_never_give_fails_each_record_saying_why(
    bulk_api: Api, service: str, problem: str
) -> None:
    result = await run(bulk_api, service, [["a", "b"], [1, 2], [3, 4]])
    assert result["outputs"] == [[], None, None]
    assert [e["message"] for e in result["errors"]] == [
        f"the rows_fn of service {service!r} returned {problem}"
    ] * 2
    assert result["batch"]["records_failed"] == 2


@pytest.mark.parametrize("service", ["t/list-pair", "t/namedtuples"])
async def test_a_pair_as_a_list_and_named_tuples_as_rows_are_answers(
    bulk_api: Api, service: str
) -> None:
    result = await run(bulk_api, service, [["a", "b"], [1, 2], [3, 4]])
    assert result["outputs"] == [["a", "b"], [1, 2], [3, 4]]
    assert result["errors"] == [None, None]


async def test_an_output_the_selection_cannot_read_fails_only_its_record(make_api: Any) -> None:
    def odd_names(record: dict[str, Any]) -> dict[str, Any]:
        return {1: "a"} if record["i"] == 2 else {"y": record["i"]}  # type: ignore[dict-item]

    services = {"t/odd": Service("t/odd", odd_names)}
    async with make_api(services=services, compress_responses=False) as api:
        result = await run(api, "t/odd", [["i"], [1], [2], [3]], create={"output": "y"})
    assert result["outputs"] == [["y"], [1], None, [3]]
    assert [e is None for e in result["errors"]] == [True, False, True]


async def test_outputs_of_a_dict_subclass_line_up_by_their_own_names(make_api: Any) -> None:
    def counts(record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, int] = collections.defaultdict(int)
        out.update({"a": 1, "b": 2} if record["i"] == 1 else {"a": 1, "c": 3})
        return out

    services = {"t/counts": Service("t/counts", counts)}
    async with make_api(services=services, compress_responses=False) as api:
        result = await run(api, "t/counts", [["i"], [1], [2]])
    assert result["outputs"] == [["a", "b", "c"], [1, 2, None], [1, None, 3]]
