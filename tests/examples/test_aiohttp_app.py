"""examples/aiohttp_app.py: one client in the cleanup context, uploaded records in, NDJSON out
as chunks drain, and a hang-up cancels the server pipeline."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from aiohttp.test_utils import TestClient, TestServer

from cspark_async import AsyncClient
from examples import aiohttp_app

from .conftest import batches_on, check_lifespan_ended, check_line, policies, wait_for_status


def jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


@pytest.fixture
async def client(no_tenant: None) -> AsyncIterator[TestClient[Any, Any]]:
    """The app on a loopback port (cleanup context run, so on its own emulator)."""
    async with TestClient(TestServer(aiohttp_app.make_app())) as http:
        yield http


@pytest.fixture
async def served(spark_env: dict[str, str]) -> AsyncIterator[TestClient[Any, Any]]:
    """The app on a loopback port, on the plugin's (slow) emulator."""
    async with TestClient(TestServer(aiohttp_app.make_app())) as http:
        yield http


async def test_cleanup_ctx_without_a_tenant_runs_an_emulator_and_says_so(
    no_tenant: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "examples.aiohttp_app")
    async with TestClient(TestServer(aiohttp_app.make_app())) as http:
        spark = http.app[aiohttp_app.SPARK]
        assert not spark.is_closed
        url = spark.base_url.full
        assert url.startswith("http://127.0.0.1:")
        assert await batches_on(spark) == []  # the emulator answers
    await check_lifespan_ended(spark, url, caplog)


async def test_json_lines_upload_gets_one_line_per_record_in_order(
    client: TestClient[Any, Any],
) -> None:
    records = policies(1_000)
    response = await client.post("/price", data=jsonl(records))
    assert response.status == 200
    assert response.content_type == "application/x-ndjson"
    lines = [json.loads(line) for line in (await response.text()).splitlines()]
    assert len(lines) == len(records)
    for offset, (line, record) in enumerate(zip(lines, records, strict=True)):
        check_line(line, offset, record)
    assert sum(line["error"] is not None for line in lines) == 1_000 // 97


async def test_json_array_upload_larger_than_aiohttps_default_limit(
    client: TestClient[Any, Any],
) -> None:
    records = policies(15_000, invalid_every=500)
    body = json.dumps(records).encode()
    assert len(body) > 2**20  # aiohttp refuses bodies over 1 MiB unless told otherwise
    response = await client.post("/price", data=io.BytesIO(body))
    assert response.status == 200
    count = 0
    async for raw in response.content:  # line by line, as it is sent
        check_line(json.loads(raw), count, records[count])
        count += 1
    assert count == 15_000


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "expected a JSON array or JSON Lines of objects"),
        (b"[]", "expected a JSON array or JSON Lines of objects"),
        (b"[1, 2]", "expected a JSON array or JSON Lines of objects"),
        (b'{"age": 30}\n[1]\n', "expected a JSON array or JSON Lines of objects"),
        (b'[{"age": 30}', "invalid JSON"),
        (b'{"age": 30}\n\n{"age": oops}\n', "line 3: invalid JSON"),
    ],
)
async def test_a_bad_body_is_a_400_and_creates_no_pipeline(
    client: TestClient[Any, Any], body: bytes, detail: str
) -> None:
    response = await client.post("/price", data=body)
    assert response.status == 400
    assert (await response.text()).startswith(detail)
    assert await batches_on(client.app[aiohttp_app.SPARK]) == []


async def test_a_finished_stream_closes_the_pipeline(
    served: TestClient[Any, Any], spark_client: AsyncClient
) -> None:
    records = policies(60, invalid_every=1_000)  # all valid (failed records fail the batch)
    response = await served.post("/price", data=jsonl(records))
    lines = [json.loads(line) for line in (await response.text()).splitlines()]
    for offset, (line, record) in enumerate(zip(lines, records, strict=True)):
        check_line(line, offset, record)
    with anyio.fail_after(10):
        summary = await wait_for_status(spark_client, "completed")
    assert summary.records_completed == 60


async def test_hanging_up_mid_stream_cancels_the_pipeline(
    served: TestClient[Any, Any], spark_client: AsyncClient
) -> None:
    records = policies(2_000)  # ~2 s of compute on the slow emulator
    response = await served.post("/price", data=jsonl(records))
    assert response.status == 200
    check_line(json.loads(await response.content.readline()), 0, records[0])
    response.close()  # drops the connection with most records still to come
    with anyio.fail_after(3):
        summary = await wait_for_status(spark_client, "cancelled")
    assert (summary.records_completed or 0) < 1_000


async def test_a_service_spark_refuses_is_a_502_before_any_body(
    served: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aiohttp_app, "SERVICE", "no-such/service")
    response = await served.post("/price", data=jsonl(policies(10)))
    assert response.status == 502
    assert "no-such/service" in await response.text()
