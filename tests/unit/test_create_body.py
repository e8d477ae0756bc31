"""The create body, and accuracy -> acceptable_error_percentage (the official SDK rounds it)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from cspark_async import SparkSdkError, UriParams
from cspark_async._batches import acceptable_error_percentage, create_body


@pytest.mark.parametrize(
    ("accuracy", "expected"),
    [
        pytest.param(0.95, 5, id="0.95-is-5-not-6"),
        pytest.param(0.99, 1, id="0.99-is-1-not-2"),
        pytest.param(0.7, 30, id="0.7-is-30-not-31"),
        pytest.param(0.9, 10, id="0.9"),
        pytest.param(1, 0, id="one"),
        pytest.param(1.0, 0, id="one-float"),
        pytest.param(0, 100, id="zero-is-100-not-0"),
        pytest.param(0.5, 50, id="half"),
        pytest.param(0.955, 5, id="fraction-rounds-up"),
        pytest.param(0.999, 1, id="tiny-fraction-rounds-up"),
    ],
)
def test_acceptable_error_percentage(accuracy: float, expected: int) -> None:
    assert acceptable_error_percentage(accuracy) == expected


@pytest.mark.parametrize(
    "accuracy",
    [-0.1, 1.01, float("nan"), float("inf"), True, "0.9"],
)
def test_acceptable_error_percentage_rejects(accuracy: Any) -> None:
    with pytest.raises(SparkSdkError, match="accuracy"):
        acceptable_error_percentage(accuracy)


def test_minimal_body() -> None:
    assert create_body("f/s") == {
        "service": "f/s",
        "call_purpose": "Async Batch Execution",
        "source_system": "Spark Python SDK",
    }  # acceptable_error_percentage is not sent when accuracy is not given


def test_verified_official_request() -> None:
    body = create_body("f/s", min_runners=100, runners_per_vm=4, accuracy=0.9)
    assert body == {
        "service": "f/s",
        "call_purpose": "Async Batch Execution",
        "source_system": "Spark Python SDK",
        "initial_workers": 100,
        "runner_thread_count": 4,
        "acceptable_error_percentage": 10,
    }


def test_every_keyword() -> None:
    body = create_body(
        UriParams(folder="f", service="s", version="1.2.3"),
        active_since=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        source_system="my-system",
        correlation_id="corr-1",
        call_purpose="testing",
        subservices=["a", "b"],
        selected_outputs="out_*",
        unique_record_key=["id", "region"],
        min_runners=10,
        max_runners=50,
        chunks_per_vm=2,
        runners_per_vm=2,
        max_input_size=70,
        max_output_size=80.5,
        accuracy=0.95,
    )
    assert body == {
        "service": "f/s[1.2.3]",
        "version_by_timestamp": "2026-01-02T03:04:05+00:00",
        "subservice": "a,b",
        "output": "out_*",
        "call_purpose": "testing",
        "source_system": "my-system",
        "correlation_id": "corr-1",
        "unique_record_key": "id,region",
        "initial_workers": 10,
        "max_workers": 50,
        "chunks_per_request": 2,
        "runner_thread_count": 2,
        "max_input_size_in_mb": 70,
        "max_output_size_in_mb": 80.5,
        "acceptable_error_percentage": 5,
    }


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        pytest.param("service/abc", {"service": "abc"}, id="service-id"),
        pytest.param("version/v1", {"version_id": "v1"}, id="version-id-only"),
        pytest.param(
            UriParams(folder="f", service="s", version_id="v1"),
            {"service": "f/s", "version_id": "v1"},
            id="both",
        ),
    ],
)
def test_service_locators(uri: Any, expected: dict[str, Any]) -> None:
    body = create_body(uri)
    assert {k: body[k] for k in ("service", "version_id") if k in body} == expected
    assert body.get("service") != ""  # never an empty service (a TS SDK quirk)


def test_extras_merge_last() -> None:
    body = create_body("f/s", call_purpose="x", extras={"call_purpose": "y", "new": 1})
    assert body["call_purpose"] == "y"
    assert body["new"] == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_runners": 0},
        {"max_runners": -1},
        {"chunks_per_vm": 1.5},
        {"runners_per_vm": True},
        {"min_runners": 20, "max_runners": 10},
        {"max_input_size": 0},
        {"max_output_size": float("nan")},
        {"subservices": ["a", 1]},
        {"active_since": 20260101},
        {"correlation_id": 5},
        {"accuracy": 2},
    ],
)
def test_invalid_options_raise_before_sending(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SparkSdkError):
        create_body("f/s", **kwargs)


@pytest.mark.parametrize("uri", ["", "nope", UriParams(), UriParams(folder="f")])
def test_invalid_uri(uri: Any) -> None:
    with pytest.raises(SparkSdkError):
        create_body(uri)
