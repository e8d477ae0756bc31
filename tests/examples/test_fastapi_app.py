"""examples/fastapi_app.py: one client in the lifespan, uploaded records in, NDJSON out as
chunks drain, and a hang-up cancels the server pipeline."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager

from cspark_async import AsyncClient
from examples import fastapi_app

from .conftest import batches_on, check_lifespan_ended, check_line, policies, wait_for_status


def jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


@pytest.fixture
async def client(no_tenant: None) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process, its lifespan run (so on its own emulator), behind httpx."""
    async with (
        LifespanManager(fastapi_app.app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(manager.app), base_url="http://t") as http,
    ):
        yield http


@pytest.fixture
async def served(spark_env: dict[str, str]) -> AsyncIterator[str]:
    """The app behind a real uvicorn server on a free port: its URL."""
    config = uvicorn.Config(
        fastapi_app.app, host="127.0.0.1", port=0, ws="none", log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    with anyio.fail_after(10):
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_lifespan_without_a_tenant_runs_an_emulator_and_says_so(
    no_tenant: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "examples.fastapi_app")
    async with LifespanManager(fastapi_app.app):
        spark = fastapi_app.app.state.spark
        assert isinstance(spark, AsyncClient)
        assert not spark.is_closed
        url = spark.base_url.full
        assert url.startswith("http://127.0.0.1:")
        assert await batches_on(spark) == []  # the emulator answers
    await check_lifespan_ended(spark, url, caplog)


async def test_json_lines_upload_gets_one_line_per_record_in_order(
    client: httpx.AsyncClient,
) -> None:
    records = policies(1_000)
    response = await client.post("/price", content=jsonl(records))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) == len(records)
    for offset, (line, record) in enumerate(zip(lines, records, strict=True)):
        check_line(line, offset, record)
    assert sum(line["error"] is not None for line in lines) == 1_000 // 97


async def test_json_array_upload(client: httpx.AsyncClient) -> None:
    records = policies(450, invalid_every=7)
    response = await client.post("/price", json=records)
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) == 450
    for offset, (line, record) in enumerate(zip(lines, records, strict=True)):
        check_line(line, offset, record)
    assert sum(line["error"] is not None for line in lines) == 450 // 7


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
    client: httpx.AsyncClient, body: bytes, detail: str
) -> None:
    response = await client.post("/price", content=body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)
    assert await batches_on(fastapi_app.app.state.spark) == []


async def test_a_finished_stream_closes_the_pipeline(
    served: str, spark_client: AsyncClient
) -> None:
    records = policies(60, invalid_every=1_000)  # all valid (failed records fail the batch)
    async with httpx.AsyncClient(base_url=served) as http:
        response = await http.post("/price", content=jsonl(records))
    lines = [json.loads(line) for line in response.text.splitlines()]
    for offset, (line, record) in enumerate(zip(lines, records, strict=True)):
        check_line(line, offset, record)
    with anyio.fail_after(10):
        summary = await wait_for_status(spark_client, "completed")
    assert summary.records_completed == 60


async def test_hanging_up_mid_stream_cancels_the_pipeline(
    served: str, spark_client: AsyncClient
) -> None:
    records = policies(2_000)  # ~2 s of compute on the slow emulator
    async with (
        httpx.AsyncClient(base_url=served) as http,
        http.stream("POST", "/price", content=jsonl(records)) as response,
    ):
        assert response.status_code == 200
        lines = response.aiter_lines()
        check_line(json.loads(await anext(lines)), 0, records[0])
    # Leaving the block closed the connection with most records still to come.
    with anyio.fail_after(3):
        summary = await wait_for_status(spark_client, "cancelled")
    assert (summary.records_completed or 0) < 1_000


async def test_a_service_spark_refuses_is_a_502_before_any_body(
    served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastapi_app, "SERVICE", "no-such/service")
    async with httpx.AsyncClient(base_url=served) as http:
        response = await http.post("/price", content=jsonl(policies(10)))
    assert response.status_code == 502
    assert "no-such/service" in response.json()["detail"]
