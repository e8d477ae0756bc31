"""Every endpoint's response shape and error answers, over loopback HTTP."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from .conftest import Api, chunk, values

STATUS_KEYS = {
    "response_timestamp",
    "request_timestamp",
    "batch_status",
    "pipeline_status",
    "chunks_available",
    "chunks_submitted",
    "record_submitted",
    "chunks_completed",
    "records_completed",
    "compute_time_ms",
    "input_buffer_used_bytes",
    "input_buffer_remaining_bytes",
    "output_buffer_used_bytes",
    "output_buffer_remaining_bytes",
    "workers_in_use",
    "records_available",
}
ENVELOPE_KEYS = {
    "service_id",
    "version_id",
    "compiler_version",
    "correlation_id",
    "source_system",
    "unique_record_key",
    "response_timestamp",
    "batch_status",
    "created_by",
    "created_timestamp",
    "updated_timestamp",
    "service_uri",
}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def assert_error(body: Any, status: int, code: str, *fragments: str) -> None:
    assert body["status"] == status
    assert body["error"]["code"] == code
    for fragment in fragments:
        assert fragment in body["error"]["message"]


async def test_create_returns_the_documented_envelope(api: Api) -> None:
    body = await api.ok(
        "POST",
        "",
        json={
            "service": "my-folder/my-service",
            "correlation_id": "c-1",
            "source_system": "tests",
            "unique_record_key": "id",
        },
    )
    assert body["object"] == "batch"
    assert re.match(r"^[0-9a-f-]{36}$", body["id"])
    data = body["data"]
    assert set(data) == ENVELOPE_KEYS
    assert data["batch_status"] == "created"
    assert data["service_uri"] == "my-folder/my-service[0.4.2]"
    assert (data["correlation_id"], data["source_system"], data["unique_record_key"]) == (
        "c-1",
        "tests",
        "id",
    )
    assert ISO_MS.match(data["created_timestamp"])


@pytest.mark.parametrize(
    "locator",
    [
        "my-folder/my-service",
        "my-folder/my-service[0.4.2]",
        "my-folder/my-service[0.4]",
        "my-folder/my-service[0]",
        "/folders/my-folder/services/my-service",
        "folders/my-folder/services/my-service",
        "MY-FOLDER/My-Service",
    ],
)
async def test_create_resolves_every_documented_locator(api: Api, locator: str) -> None:
    body = await api.ok("POST", "", json={"service": locator})
    assert body["data"]["service_uri"] == "my-folder/my-service[0.4.2]"


async def test_create_by_service_and_version_uuid(api: Api) -> None:
    first = await api.ok("POST", "", json={"service": "demo/term-life"})
    service_id, version_id = first["data"]["service_id"], first["data"]["version_id"]
    by_service = await api.ok("POST", "", json={"service": service_id})
    by_version = await api.ok("POST", "", json={"version_id": version_id})
    assert (
        by_service["data"]["service_uri"]
        == by_version["data"]["service_uri"]
        == ("demo/term-life[2.1.0]")
    )


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        ({"service": "nope/nothing"}, 404, "SERVICE_NOT_FOUND", "nope/nothing"),
        ({"service": "my-folder/my-service[9.9.9]"}, 404, "SERVICE_NOT_FOUND", "9.9.9"),
        ({}, 400, "SERVICE_REQUIRED", "service"),
        ({"service": 42}, 400, "BAD_REQUEST", "'service' must be a string"),
        ({"service": "my-folder/my-service", "max_workers": 0}, 400, "BAD_REQUEST", "max_workers"),
        (
            {"service": "my-folder/my-service", "acceptable_error_percentage": 101},
            400,
            "BAD_REQUEST",
            "acceptable_error_percentage",
        ),
        (
            {"service": "my-folder/my-service", "max_input_size_in_mb": -1},
            400,
            "BAD_REQUEST",
            "max_input_size_in_mb",
        ),
        ([1, 2], 400, "BAD_REQUEST", "JSON object"),
    ],
)
async def test_create_rejects_bad_bodies(
    api: Api, body: Any, status: int, code: str, fragment: str
) -> None:
    got_status, got = await api.call("POST", "", json=body)
    assert got_status == status
    assert_error(got, status, code, fragment)


async def test_invalid_json_is_a_400_naming_the_problem(api: Api) -> None:
    status, body = await api.call(
        "POST", "", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert_error(body, 400, "INVALID_JSON", "not valid JSON")
    status, body = await api.call("POST", "", data=b"")
    assert_error(body, 400, "INVALID_JSON", "empty")


async def test_get_info_has_summary_and_configuration(api: Api) -> None:
    batch_id = await api.create(
        initial_workers=3, max_workers=2, max_input_size_in_mb=1.5, acceptable_error_percentage=10
    )
    await api.push(batch_id, chunk("a", values(0, 3)))
    await api.drain(batch_id, 1)
    info = await api.ok("GET", f"/{batch_id}")
    data = info["data"]
    assert info["id"] == batch_id
    assert data["batch_status"] == "in_progress"
    assert data["summary"]["records_submitted"] == 3
    assert data["summary"]["records_completed"] == 3
    assert data["summary"]["chunks_completed"] == 1
    assert data["summary"]["input_size_bytes"] > 0
    assert data["configuration"] == {
        "initial_workers": 3,
        "chunks_per_request": 2,
        "runner_thread_count": 2,
        "acceptable_error_percentage": 10,
        "input_buffer_allocated_bytes": 1_500_000,
        "output_buffer_allocated_bytes": 80_000_000,
        "max_workers": 2,
    }


async def test_status_has_exactly_the_documented_keys(api: Api) -> None:
    batch_id = await api.create()
    status = await api.status(batch_id)
    assert set(status) == STATUS_KEYS
    assert status["batch_status"] == "created"
    assert status["pipeline_status"] == "idle"
    assert status["input_buffer_remaining_bytes"] == 70_000_000


async def test_push_and_pull_objects_round_trip(api: Api) -> None:
    batch_id = await api.create()
    pushed = await api.push(batch_id, chunk("a", values(0, 2)), chunk("b", values(2, 3)))
    assert set(pushed) == STATUS_KEYS
    assert pushed["record_submitted"] == 5
    assert pushed["chunks_submitted"] == 2
    results = {r["id"]: r for r in await api.drain(batch_id, 2)}
    assert results["a"]["outputs"] == values(0, 2)
    assert results["b"]["outputs"] == values(2, 3)
    for result in results.values():
        n = len(result["outputs"])
        assert result["errors"] == [None] * n
        assert result["warnings"] == [None] * n
        assert len(result["process_time"]) == n
        assert result["summary_output"] == [[]]


async def test_array_form_outputs_mirror_inputs_with_parameters_merged(api: Api) -> None:
    batch_id = await api.create()
    inputs = [["value", "name"], [1, "x"], [2, "y"]]
    await api.push(batch_id, chunk("a", inputs, parameters={"common": 40}))
    (result,) = await api.drain(batch_id, 1)
    assert result["outputs"] == [["common", "value", "name"], [40, 1, "x"], [40, 2, "y"]]
    assert len(result["errors"]) == 2
    status = await api.status(batch_id)
    assert status["record_submitted"] == 2  # the header row is not a record


@pytest.mark.parametrize("query", ["max", "max_chunks"])
async def test_pull_limits_chunks_by_either_query_name(api: Api, query: str) -> None:
    batch_id = await api.create()
    await api.push(batch_id, *(chunk(f"c{i}", values(i, 1)) for i in range(5)))
    await api.wait_for(batch_id, lambda s: s["chunks_available"] == 5)
    body = await api.ok("GET", f"/{batch_id}/chunkresults?{query}=2")
    assert len(body["data"]) == 2
    assert body["status"]["chunks_available"] == 3
    assert body["status"]["records_available"] == 3
    rest = await api.ok("GET", f"/{batch_id}/chunkresults")
    assert len(rest["data"]) == 3
    empty = await api.ok("GET", f"/{batch_id}/chunkresults?{query}=0")  # clamped to 1
    assert empty["data"] == []
    assert set(empty["status"]) == STATUS_KEYS
    status, err = await api.call("GET", f"/{batch_id}/chunkresults?max=lots")
    assert status == 400
    assert_error(err, 400, "BAD_REQUEST", "'max' must be an integer")


async def test_each_result_is_pulled_exactly_once(api: Api) -> None:
    batch_id = await api.create()
    await api.push(batch_id, *(chunk(f"c{i}", values(i * 10, 10)) for i in range(40)))
    results = await api.drain(batch_id, 40)
    assert sorted(r["id"] for r in results) == sorted(f"c{i}" for i in range(40))
    assert (await api.pull(batch_id))["data"] == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"nope": []}, "'chunks' array"),
        ({"chunks": {}}, "'chunks' must be an array"),
        ({"chunks": [1]}, "chunks[0] must be an object"),
        ({"chunks": [{"data": {"inputs": []}}]}, "chunks[0].id must be a string"),
        ({"chunks": [{"id": "a", "size": "2", "data": {"inputs": []}}]}, "chunks[0].size"),
        ({"chunks": [{"id": "a"}]}, "chunks[0].data must be an object"),
        (
            {"chunks": [{"id": "a", "data": {"inputs": "x"}}]},
            "chunks[0].data.inputs must be an array",
        ),
        (
            {"chunks": [{"id": "a", "data": {"inputs": [["v"], [1, 2]]}}]},
            "chunks[0].data.inputs[1] has 2 values but the header row names 1",
        ),
        (
            {"chunks": [{"id": "a", "data": {"inputs": [{"v": 1}, 3]}}]},
            "chunks[0].data.inputs[1] must be an object",
        ),
        ({"chunks": [{"id": "a", "data": {"inputs": [[1], [2]]}}]}, "header row"),
        ({"chunks": [{"id": "a", "data": {"inputs": [], "parameters": [1]}}]}, "parameters"),
        (
            {
                "chunks": [
                    {
                        "id": "a",
                        "data": {
                            "inputs": [],
                            "summary": {
                                "aggregation": [{"output_name": "v", "operator": "MEDIAN"}]
                            },
                        },
                    }
                ]
            },
            "MEDIAN",
        ),
    ],
)
async def test_push_rejects_malformed_chunks_naming_the_path(
    api: Api, body: Any, fragment: str
) -> None:
    batch_id = await api.create()
    status, err = await api.call("POST", f"/{batch_id}/chunks", json=body)
    assert status == 400
    assert fragment in err["error"]["message"]
    after = await api.status(batch_id)
    assert after["chunks_submitted"] == 0  # rejected whole, nothing applied
    assert after["batch_status"] == "created"


async def test_push_accepts_a_bare_array_and_an_empty_list(api: Api) -> None:
    batch_id = await api.create()
    status = await api.ok("POST", f"/{batch_id}/chunks", json=[chunk("a", values(0, 1))])
    assert status["chunks_submitted"] == 1
    status = await api.ok("POST", f"/{batch_id}/chunks", json={"chunks": []})
    assert status["chunks_submitted"] == 1


async def test_unknown_batch_ids_are_404_on_every_verb(api: Api) -> None:
    for method, path, kwargs in [
        ("GET", "/missing", {}),
        ("GET", "/missing/status", {}),
        ("POST", "/missing/chunks", {"json": {"chunks": []}}),
        ("GET", "/missing/chunkresults", {}),
        ("PATCH", "/missing", {"json": {"batch_status": "closed"}}),
    ]:
        status, body = await api.call(method, path, **kwargs)
        assert status == 404, (method, path)
        assert_error(body, 404, "BATCH_NOT_FOUND", "missing")


async def test_unknown_routes_and_methods_answer_json(api: Api) -> None:
    status, body = await api.call("GET", api.emulator.base_url + "/api/v4/nothing")
    assert status == 404
    assert "no route" in body["error"]["message"]
    status, body = await api.call("DELETE", "/some-id")
    assert status == 405
    assert "DELETE is not allowed" in body["error"]["message"]


async def test_wrong_tenant_in_path_or_header(api: Api) -> None:
    status, body = await api.call("GET", api.emulator.url + "/other/api/v4/batch/status")
    assert status == 404
    assert_error(body, 404, "TENANT_NOT_FOUND", "other")
    # The header is tied to API keys only: with one, a different tenant is refused ...
    keyed = {"x-tenant-name": "other", "x-synthetic-key": "any"}
    status, body = await api.call("GET", "/status", headers=keyed)
    assert status == 403
    assert_error(body, 403, "TENANT_MISMATCH")
    # ... with a bearer token or no credential, the URL's tenant rules.
    for headers in (
        {"x-tenant-name": "other"},
        {"x-tenant-name": "other", "Authorization": "Bearer t"},
    ):
        status, body = await api.call("GET", "/status", headers=headers)
        assert status == 200, body


async def test_error_bodies_echo_the_request_id(api: Api) -> None:
    _, body = await api.call("GET", "/missing", headers={"x-request-id": "req-123"})
    assert body["request_id"] == "req-123"


async def test_describe_lists_in_progress_and_recent_batches(api: Api) -> None:
    running = await api.create()
    await api.push(running, chunk("a", values(0, 4)))
    finished = await api.create("demo/term-life")
    await api.ok("PATCH", f"/{finished}", json={"batch_status": "cancelled"})
    body = await api.ok("GET", "/status")
    assert [b["id"] for b in body["in_progress_batches"]] == [running]
    assert [b["id"] for b in body["recent_batches"]] == [finished]
    recent = body["recent_batches"][0]
    assert recent["object"] == "batch"
    assert recent["data"]["batch_status"] == "cancelled"
    assert recent["data"]["pipeline_status"] == "closed"
    assert set(recent["data"]["summary"]) == {
        "records_submitted",
        "records_failed",
        "records_completed",
        "compute_time_ms",
        "batch_time_ms",
    }
    assert body["tenant"]["configuration"]["max_workers"] == 4
    assert set(body["tenant"]["status"]) == {
        "input_buffer_used_bytes",
        "input_buffer_remaining_bytes",
        "output_buffer_used_bytes",
        "output_buffer_remaining_bytes",
        "workers_in_use",
    }
    assert body["environment"] == {"update": 1}


async def test_oversized_bodies_are_a_json_413(make_api: Any) -> None:
    async with make_api(input_buffer_bytes=1000) as api:
        # The body limit is max(64 MiB, 2 x the input buffer).
        batch_id = await api.create()
        big = b'{"chunks": [' + b" " * (64 * 1024 * 1024 + 10) + b"]}"
        status, body = await api.call(
            "POST",
            f"/{batch_id}/chunks",
            data=io.BytesIO(big),
            headers={"Content-Type": "application/json"},
        )
        assert status == 413
        assert body["error"]["code"] == "REQUEST_ENTITY_TOO_LARGE"
        assert "too large" in body["error"]["message"]
        assert (await api.status(batch_id))["chunks_submitted"] == 0
