"""Shared helpers for the examples' tests: policies for `demo/term-life`, what the service should
answer for each, and a look at the batches an emulator holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from cspark_async import AsyncClient, Batch, BatchSummary, SparkConnectionError
from cspark_async.emulator import premium

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def spark_emulator_options() -> dict[str, Any]:
    """The plugin's emulator for these tests: slow, and enforcing an API key as a tenant does.
    Apps reach it through `spark_env`, the test itself through `spark_client`."""
    return {"workers": 2, "record_latency": 0.002, "api_key": "sk-test"}


@pytest.fixture
def spark_env(spark_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The plugin's, plus no CSPARK_SERVICE: the apps use their default service."""
    monkeypatch.delenv("CSPARK_SERVICE", raising=False)
    return spark_env


# Rows the service rejects, each for its own reason (`premium` raises ValueError).
INVALID: list[dict[str, str]] = [
    {"age": "99", "smoker": "no", "cover": "100000", "term": "10", "plan": "gold"},
    {"age": "40", "smoker": "yes", "cover": "0", "term": "10", "plan": "silver"},
    {"age": "40", "smoker": "no", "cover": "100000", "term": "2", "plan": "bronze"},
    {"age": "40", "smoker": "no", "cover": "100000", "term": "10", "plan": "platinum"},
    {"age": "", "smoker": "no", "cover": "100000", "term": "10", "plan": "gold"},
]


def policies(count: int, *, invalid_every: int = 97) -> list[dict[str, str]]:
    """`count` policies as CSV would give them (strings); every `invalid_every`-th is invalid."""
    rows = []
    for i in range(count):
        if i % invalid_every == invalid_every - 1:
            row = dict(INVALID[(i // invalid_every) % len(INVALID)])
        else:
            row = {
                "age": str(18 + i % 58),
                "smoker": "yes" if i % 3 == 0 else "no",
                "cover": str(50_000 * (1 + i % 10)),
                "term": str(5 + i % 36),
                "plan": ("bronze", "silver", "gold")[i % 3],
            }
        rows.append({"policy_id": f"P{i:06d}", **row})
    return rows


def expected(record: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(output, error message) the service gives `record`, computed by the service itself."""
    try:
        return premium(record), None
    except ValueError as exc:
        return None, str(exc)


def check_line(line: dict[str, Any], offset: int, record: dict[str, Any]) -> None:
    """One result line is the service's answer for the record at `offset`."""
    output, error = expected(record)
    assert line["offset"] == offset
    assert line["output"] == output
    if error is None:
        assert line["error"] is None
    else:
        assert line["error"] == {"error_type": "ValueError", "message": error}


@pytest.fixture
def no_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CSPARK_* variable: the examples fall back to their in-process emulator."""
    for name in (
        "BASE_URL",
        "API_KEY",
        "BEARER_TOKEN",
        "CLIENT_ID",
        "CLIENT_SECRET",
        "OAUTH_PATH",
        "SERVICE",
    ):
        monkeypatch.delenv(f"CSPARK_{name}", raising=False)


async def batches_on(spark: AsyncClient) -> list[Batch]:
    described = (await spark.batches.describe()).parsed
    return [*described.in_progress_batches, *described.recent_batches]


async def wait_for_status(spark: AsyncClient, status: str) -> BatchSummary:
    """The summary of the one batch on the tenant, once that batch reaches `status`."""
    while True:
        found = await batches_on(spark)
        assert len(found) == 1, found
        if found[0].batch_status == status:
            assert found[0].data is not None
            assert found[0].data.summary is not None
            return found[0].data.summary
        await anyio.sleep(0.05)


async def check_lifespan_ended(
    spark: AsyncClient, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """After an app's shutdown: it said it used an emulator, closed its client, stopped it."""
    assert [f"no CSPARK_BASE_URL: using an in-process emulator at {url}"] == caplog.messages
    assert spark.is_closed
    async with AsyncClient(url, api_key="open", max_retries=0, logger=False) as probe:
        with pytest.raises(SparkConnectionError):  # the emulator was stopped
            await probe.batches.describe()
