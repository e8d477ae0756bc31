"""Create options the published clients send: buffer sizes under every spelling, selected
outputs, the unique record key, `return_all_records`, `version_by_timestamp`, `subservice`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from cspark_async.emulator import Service

from .conftest import Api, chunk

SPELLINGS = [
    pytest.param("max_input_size_in_mb", "max_output_size_in_mb", id="cspark>=0.3.0"),
    pytest.param("max_input_in_mb", "max_output_in_mb", id="cspark-0.2.5/0.2.6"),
    pytest.param("max_input_size", "max_output_size", id="cspark<=0.2.4-and-ts"),
]


@pytest.mark.parametrize(("in_key", "out_key"), SPELLINGS)
async def test_every_published_buffer_spelling_sizes_the_buffers(
    api: Api, in_key: str, out_key: str
) -> None:
    batch_id = await api.create(**{in_key: 1.5, out_key: 2})
    info = await api.ok("GET", f"/{batch_id}")
    config = info["data"]["configuration"]
    assert config["input_buffer_allocated_bytes"] == 1_500_000
    assert config["output_buffer_allocated_bytes"] == 2_000_000
    status = await api.status(batch_id)
    assert status["input_buffer_remaining_bytes"] == 1_500_000


async def test_two_spellings_must_agree(api: Api) -> None:
    same = await api.create(max_input_in_mb=3, max_input_size_in_mb=3.0)
    info = await api.ok("GET", f"/{same}")
    assert info["data"]["configuration"]["input_buffer_allocated_bytes"] == 3_000_000
    status, body = await api.call(
        "POST",
        "",
        json={"service": "my-folder/my-service", "max_output_in_mb": 1, "max_output_size": 2},
    )
    assert status == 400
    assert body["error"]["code"] == "CONFLICTING_OPTIONS"
    assert "max_output_in_mb=1" in body["error"]["message"]
    status, body = await api.call(
        "POST", "", json={"service": "my-folder/my-service", "max_input_in_mb": "big"}
    )
    assert status == 400
    assert "max_input_in_mb" in body["error"]["message"]


def _premium_like(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("fail"):
        raise ValueError("asked to fail")
    v = record["value"]
    return {"index": "the service's own", "annual": v * 12, "monthly": v, "risk_class": "low"}


@pytest.fixture
def shaped_api(make_api: Callable[..., Any]) -> Any:
    return make_api(services={"f/s": _premium_like})


async def test_unique_record_key_comes_back_in_each_output(shaped_api: Any) -> None:
    async with shaped_api as api:
        batch_id = await api.create("f/s", unique_record_key="index")
        created = await api.ok("GET", f"/{batch_id}")
        assert created["data"]["unique_record_key"] == "index"
        await api.push(
            batch_id,
            chunk("objects", [{"index": 10, "value": 1}, {"index": 11, "value": 2, "fail": 1}]),
            chunk("rows", [["index", "value"], ["r1", 3], ["r2", 4]]),
        )
        results = {r["id"]: r for r in await api.drain(batch_id, 2)}
    objects = results["objects"]["outputs"]
    # The key is the input's value (first), even where the service outputs the same name; a
    # failed record still has a null output.
    assert objects == [{"index": 10, "annual": 12, "monthly": 1, "risk_class": "low"}, None]
    assert list(objects[0]) == ["index", "annual", "monthly", "risk_class"]
    assert results["objects"]["errors"][1]["message"] == "asked to fail"
    assert results["rows"]["outputs"] == [
        ["index", "annual", "monthly", "risk_class"],
        ["r1", 36, 3, "low"],
        ["r2", 48, 4, "low"],
    ]


async def test_composite_key_and_list_form(shaped_api: Any) -> None:
    async with shaped_api as api:
        batch_id = await api.create("f/s", unique_record_key=["region", "id"])
        await api.push(batch_id, chunk("c", [{"id": 1, "region": "eu", "value": 1}]))
        (result,) = await api.drain(batch_id, 1)
        info = await api.ok("GET", f"/{batch_id}")
    assert info["data"]["unique_record_key"] == "region,id"
    assert list(result["outputs"][0])[:2] == ["region", "id"]
    assert result["outputs"][0]["region"] == "eu"


async def test_selected_outputs_filter_by_full_match_regex(shaped_api: Any) -> None:
    async with shaped_api as api:
        batch_id = await api.create("f/s", output="annual|monthly,risk_.*")
        keyed = await api.create("f/s", output=["risk_class"], unique_record_key="value")
        summary = {"aggregation": [{"output_name": "monthly", "operator": "SUM"}]}
        for target in (batch_id, keyed):
            await api.push(target, chunk("c", [{"value": 2}, {"value": 5}], summary=summary))
        (plain,) = await api.drain(batch_id, 1)
        (with_key,) = await api.drain(keyed, 1)
    assert plain["outputs"] == [
        {"annual": 24, "monthly": 2, "risk_class": "low"},
        {"annual": 60, "monthly": 5, "risk_class": "low"},
    ]
    # Aggregations read the service's full outputs, selected or not.
    assert with_key["summary_output"] == [
        [{"output_name": "monthly", "operator": "SUM", "value": 7}]
    ]
    assert with_key["outputs"] == [
        {"value": 2, "risk_class": "low"},
        {"value": 5, "risk_class": "low"},
    ]


async def test_invalid_selected_output_pattern_is_a_400(api: Api) -> None:
    status, body = await api.call(
        "POST", "", json={"service": "my-folder/my-service", "output": "total("}
    )
    assert status == 400
    assert "regular expression" in body["error"]["message"]


async def test_return_all_records_false_returns_only_the_aggregates(api: Api) -> None:
    batch_id = await api.create()
    agg = [{"output_name": "value", "operator": "SUM"}]
    await api.push(
        batch_id,
        chunk(
            "summary-only",
            [{"value": 1}, {"value": 2}],
            summary={"aggregation": agg, "return_all_records": False},
        ),
        chunk("all", [{"value": 3}], summary={"aggregation": agg, "return_all_records": True}),
    )
    results = {r["id"]: r for r in await api.drain(batch_id, 2)}
    only = results["summary-only"]
    assert only["outputs"] == only["errors"] == only["warnings"] == only["process_time"] == []
    assert only["summary_output"] == [[{"output_name": "value", "operator": "SUM", "value": 3}]]
    assert results["all"]["outputs"] == [{"value": 3}]
    status = await api.status(batch_id)
    assert status["records_completed"] == 3
    status, body = await api.call(
        "POST",
        f"/{batch_id}/chunks",
        json={"chunks": [chunk("bad", [{"value": 1}], summary={"return_all_records": "no"})]},
    )
    assert status == 400
    assert "return_all_records" in body["error"]["message"]


async def test_version_by_timestamp_must_match_a_version(make_api: Callable[..., Any]) -> None:
    dated = Service(name="f/dated", fn=dict, version="2.0.0", effective_since=datetime(2024, 1, 1))
    async with make_api(services={"f/dated": dated}) as api:
        ok = await api.create("f/dated", version_by_timestamp="2024-06-01T00:00:00.000Z")
        assert ok
        assert await api.create("f/dated", version_by_timestamp="2025-01-01")
        status, body = await api.call(
            "POST", "", json={"service": "f/dated", "version_by_timestamp": "2023-12-31T23:59:59Z"}
        )
        assert status == 404
        assert body["error"]["code"] == "VERSION_NOT_FOUND"
        status, body = await api.call(
            "POST", "", json={"service": "f/dated", "version_by_timestamp": "last tuesday"}
        )
        assert status == 400
        # A pinned version makes the timestamp irrelevant.
        assert await api.create("f/dated[2.0.0]", version_by_timestamp="2020-01-01")
        assert await api.create("", version_id=dated.version_id, version_by_timestamp="2020-01-01")


async def test_subservice_is_accepted_as_a_string_or_a_list(api: Api) -> None:
    assert await api.create(subservice="a,b")
    assert await api.create(subservice=["a", "b"])
    status, body = await api.call(
        "POST", "", json={"service": "my-folder/my-service", "subservice": 3}
    )
    assert status == 400
    assert "subservice" in body["error"]["message"]


async def test_describe_allocates_the_running_pipelines_buffers(api: Api) -> None:
    empty = await api.ok("GET", "/status")
    assert empty["tenant"]["configuration"]["input_buffer_allocated_bytes"] == 0
    assert empty["tenant"]["configuration"]["output_buffer_allocated_bytes"] == 0
    assert empty["tenant"]["status"]["input_buffer_remaining_bytes"] == 0
    first = await api.create(max_input_size_in_mb=1, max_output_size_in_mb=2)
    await api.create(max_input_size_in_mb=3, max_output_size_in_mb=4)
    both = await api.ok("GET", "/status")
    assert both["tenant"]["configuration"]["input_buffer_allocated_bytes"] == 4_000_000
    assert both["tenant"]["configuration"]["output_buffer_allocated_bytes"] == 6_000_000
    await api.ok("PATCH", f"/{first}", json={"batch_status": "cancelled"})
    one = await api.ok("GET", "/status")
    assert one["tenant"]["configuration"]["input_buffer_allocated_bytes"] == 3_000_000
