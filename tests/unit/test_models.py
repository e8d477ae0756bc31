"""Typed views: the documented samples structure cleanly; unknown and missing fields
are tolerated; wrong shapes give InvalidResponseError, never KeyError."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from cspark_async import (
    ApiResponse,
    Batch,
    BatchDescription,
    BatchStatus,
    ChunkResult,
    InvalidResponseError,
    PullResult,
)
from cspark_async._http import RawResponse
from cspark_async._serde import structure

STATUS = {
    "response_timestamp": "1970-12-03T04:56:12.186Z",
    "request_timestamp": "1970-12-03T04:56:12.186Z",
    "batch_status": "in_progress",
    "pipeline_status": "idle",
    "chunks_available": 2,
    "chunks_submitted": 2,
    "record_submitted": 7,
    "chunks_completed": 2,
    "records_completed": 7,
    "compute_time_ms": 8,
    "input_buffer_used_bytes": 0,
    "input_buffer_remaining_bytes": 70000000,
    "output_buffer_used_bytes": 402,
    "output_buffer_remaining_bytes": 79999598,
    "workers_in_use": 1,
    "records_available": 7,
}

INFO = {
    "object": "batch",
    "id": "uuid",
    "data": {
        "service_id": "uuid",
        "version_id": "uudi",
        "compiler_version": "Neuron_v1.13.0",
        "correlation_id": "uuid",
        "source_system": "Spark Python SDK",
        "unique_record_key": None,
        "summary": {"chunks_submitted": 123, "records_submitted": 456, "batch_time_ms": 12234},
        "configuration": {
            "initial_workers": 10,
            "max_workers": 3000,
            "input_buffer_allocated_bytes": 70000000,
        },
        "response_timestamp": "1970-12-03T04:56:12.186Z",
        "batch_status": "in_progress",
        "created_by": "john.doe@coherent.global",
        "created_timestamp": "1970-12-03T04:56:12.186Z",
        "updated_timestamp": "1970-12-03T04:56:12.186Z",
        "service_uri": "my-folder/my-service[0.4.2]",
    },
}


def test_status_sample() -> None:
    status = structure(STATUS, BatchStatus)
    assert status.records_submitted == 7  # the wire's singular key
    assert status.records_available == 7
    assert status.batch_status == "in_progress"
    expected = datetime(1970, 12, 3, 4, 56, 12, 186000, tzinfo=timezone.utc)
    assert status.response_timestamp == expected
    plural = structure({"records_submitted": 3, "record_submitted": 9}, BatchStatus)
    assert plural.records_submitted == 3


def test_info_sample() -> None:
    batch = structure(INFO, Batch)
    assert batch.id == "uuid"
    assert batch.batch_status == "in_progress"
    assert batch.data is not None
    assert batch.data.summary is not None
    assert batch.data.summary.records_submitted == 456
    assert batch.data.configuration is not None
    assert batch.data.configuration.max_workers == 3000
    assert batch.data.summary.chunks_failed is None  # missing -> None


def test_dispose_under_meta() -> None:
    batch = structure({"object": "batch", "id": "x", "meta": {"batch_status": "closed"}}, Batch)
    assert batch.batch_status == "closed"


def test_pull_sample_and_records() -> None:
    pulled = structure(
        {
            "data": [
                {
                    "id": "a",
                    "summary_output": [[]],
                    "outputs": [{"value": 42}, {"value": 43}],
                    "warnings": [None, None],
                    "errors": [None, None],
                    "process_time": [1, 1],
                },
                {"id": "b", "outputs": [["value", "x"], [44, 1], None], "errors": [None, {"m": 1}]},
            ],
            "status": STATUS,
        },
        PullResult,
    )
    assert [c.id for c in pulled.data] == ["a", "b"]
    assert pulled.data[0].records() == [{"value": 42}, {"value": 43}]
    assert pulled.data[1].records() == [{"value": 44, "x": 1}, None]
    assert pulled.status is not None
    assert pulled.status.records_submitted == 7


def test_describe_sample() -> None:
    described = structure(
        {
            "in_progress_batches": [],
            "recent_batches": [
                {
                    "object": "batch",
                    "id": "uuid",
                    "data": {
                        "pipeline_status": "closed",
                        "batch_status": "completed",
                        "summary": {"records_submitted": 123, "batch_time_ms": 456},
                    },
                }
            ],
            "tenant": {"configuration": {"max_workers": 100}, "status": {"workers_in_use": 0}},
            "environment": {"update": 123},
        },
        BatchDescription,
    )
    (recent,) = described.recent_batches
    assert recent.data is not None
    assert recent.data.pipeline_status == "closed"
    assert described.tenant is not None
    assert described.tenant.configuration is not None
    assert described.tenant.configuration.max_workers == 100
    assert described.environment == {"update": 123}


@pytest.mark.parametrize(
    ("value", "cls"),
    [
        ({}, BatchStatus),
        ({"brand_new_field": {"x": 1}}, BatchStatus),
        ({"id": "x"}, Batch),
        ({"data": None, "status": None}, PullResult),
        ({"id": "c"}, ChunkResult),
        ({}, BatchDescription),
        ({"response_timestamp": "not a date"}, BatchStatus),
    ],
)
def test_tolerant_of_unknown_and_missing(value: dict[str, Any], cls: type) -> None:
    parsed = structure(value, cls)
    assert isinstance(parsed, cls)
    assert not hasattr(parsed, "brand_new_field")


def _response(data: Any, model: type) -> ApiResponse[Any]:
    raw = RawResponse(
        status=200, headers={}, body=b"", method="GET", url="http://h/x", request_id="rid"
    )
    return ApiResponse(raw, data, model)


@pytest.mark.parametrize(
    ("data", "model"),
    [
        ([], BatchStatus),
        ("text", Batch),
        ({"data": "oops"}, PullResult),
        ({"records_completed": "many"}, BatchStatus),
        ({"data": [1]}, PullResult),
    ],
)
def test_wrong_shapes_raise_invalid_response_on_parsed(data: Any, model: type) -> None:
    response = _response(data, model)
    assert response.data == data  # the raw body is always there
    with pytest.raises(InvalidResponseError) as info:
        _ = response.parsed
    assert info.value.status == 200
    assert info.value.request_id == "rid"
    assert model.__name__ in str(info.value)


def test_parsed_is_built_once() -> None:
    response = _response(STATUS, BatchStatus)
    assert response.parsed is response.parsed
    assert response.data is STATUS


def test_raw_response_json_errors() -> None:
    for body in (b"", b"<html>oops</html>", b'{"truncated": '):
        raw = RawResponse(
            status=200,
            headers={"Content-Type": "text/html"},
            body=body,
            method="GET",
            url="u",
            request_id="r",
        )
        with pytest.raises(InvalidResponseError, match="expected JSON"):
            raw.json()
