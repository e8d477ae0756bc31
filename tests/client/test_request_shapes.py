"""Exact request shapes, headers and retry schedules, with aioresponses (no server)."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import attrs
import orjson
import pytest
from aioresponses import CallbackResult, aioresponses
from yarl import URL

import cspark_async as sdk
from cspark_async import AsyncClient, BatchChunk, ChunkData, create_chunks
from cspark_async._auth import OAuth2Auth

from .conftest import Sleeps, TopOfRange

BASE = "https://excel.test.coherent.global/tenant-x"
API = f"{BASE}/api/v4/batch"
TOKEN_URL = (
    "https://keycloak.test.coherent.global/auth/realms/tenant-x/protocol/openid-connect/token"
)
KEY = "sk-api-key-0123456789"
BEARER = "bearer-token-abcdef"
CLIENT_SECRET = "oauth-client-secret-xyz"
STATUS = {"batch_status": "in_progress", "record_submitted": 2, "records_available": 0}
ENVELOPE = {"object": "batch", "id": "b1", "data": {"batch_status": "closed"}}


@asynccontextmanager
async def client(sleeps: Sleeps | None = None, **kwargs: Any) -> AsyncIterator[AsyncClient]:
    if not {"api_key", "token", "oauth"} & kwargs.keys():
        kwargs["api_key"] = KEY
    async with AsyncClient(BASE, **kwargs) as spark:
        policy = attrs.evolve(
            spark.policy, rng=TopOfRange(), sleep=sleeps if sleeps is not None else asyncio.sleep
        )
        yield spark.with_options(policy=policy)


def calls(m: aioresponses, method: str, url: str) -> list[Any]:
    return m.requests.get((method, URL(url)), [])


def sent_json(call: Any) -> Any:
    return orjson.loads(call.kwargs["data"])


# ---- headers -------------------------------------------------------------------------------


async def test_default_headers_on_a_get(mocked: aioresponses) -> None:
    mocked.get(f"{API}/status", payload={})
    async with client() as spark:
        await spark.batches.describe()
    (call,) = calls(mocked, "GET", f"{API}/status")
    headers = call.kwargs["headers"]
    assert headers["x-tenant-name"] == "tenant-x"
    assert uuid.UUID(headers["x-request-id"]).version == 4
    assert re.fullmatch(
        rf"agent=cspark-async/{re.escape(sdk.__version__)}; env=Python/\d+\.\d+\.\d+",
        headers["x-spark-ua"],
    )
    assert headers["User-Agent"].startswith(f"Coherent Spark SDK v{sdk.__version__} (cspark-async")
    assert headers["x-synthetic-key"] == KEY
    assert "Authorization" not in headers
    assert "Content-Type" not in headers  # no body, no content type
    assert call.kwargs["allow_redirects"] is False


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {"token": f"Bearer {BEARER}"}, {"Authorization": f"Bearer {BEARER}"}, id="bearer"
        ),
        pytest.param({"api_key": "open"}, {}, id="open-api-key"),
        pytest.param({"token": "open"}, {}, id="open-token"),
    ],
)
async def test_credential_headers(
    mocked: aioresponses, kwargs: dict[str, str], expected: dict[str, str]
) -> None:
    mocked.get(f"{API}/status", payload={})
    async with client(**kwargs) as spark:
        await spark.batches.describe()
    headers = calls(mocked, "GET", f"{API}/status")[0].kwargs["headers"]
    auth = {k: v for k, v in headers.items() if k in ("Authorization", "x-synthetic-key")}
    assert auth == expected


async def test_each_call_gets_its_own_request_id(mocked: aioresponses) -> None:
    mocked.get(f"{API}/status", payload={}, repeat=True)
    async with client() as spark:
        await spark.batches.describe()
        await spark.batches.describe()
    ids = [c.kwargs["headers"]["x-request-id"] for c in calls(mocked, "GET", f"{API}/status")]
    assert len(set(ids)) == 2


# ---- verbs ---------------------------------------------------------------------------------


async def test_create_body_and_content_type(mocked: aioresponses) -> None:
    mocked.post(API, payload={"object": "batch", "id": "b1", "data": {"batch_status": "created"}})
    async with client() as spark:
        batch = await spark.batches.create(
            "f/s[1.0]",
            min_runners=100,
            runners_per_vm=4,
            accuracy=0.9,
            unique_record_key=["a", "b"],
            max_input_size=10,
        )
    assert batch.data["id"] == "b1"
    assert batch.parsed.batch_status == "created"
    (call,) = calls(mocked, "POST", API)
    assert call.kwargs["headers"]["Content-Type"] == "application/json"
    assert sent_json(call) == {
        "service": "f/s[1.0]",
        "call_purpose": "Async Batch Execution",
        "source_system": "Spark Python SDK",
        "unique_record_key": "a,b",
        "initial_workers": 100,
        "runner_thread_count": 4,
        "max_input_size_in_mb": 10,
        "acceptable_error_percentage": 10,
    }


async def test_invalid_create_sends_nothing(mocked: aioresponses) -> None:
    async with client() as spark:
        with pytest.raises(sdk.SparkSdkError):
            await spark.batches.create("f/s", accuracy=1.5)
        with pytest.raises(sdk.SparkSdkError):
            await spark.batches.create("not a uri")
    assert mocked.requests == {}


@pytest.mark.parametrize(
    ("verb", "method", "url", "body"),
    [
        pytest.param("get_info", "GET", f"{API}/b1", None, id="info"),
        pytest.param("get_status", "GET", f"{API}/b1/status", None, id="status"),
        pytest.param("dispose", "PATCH", f"{API}/b1", {"batch_status": "closed"}, id="dispose"),
        pytest.param("cancel", "PATCH", f"{API}/b1", {"batch_status": "cancelled"}, id="cancel"),
    ],
)
async def test_pipeline_verbs(
    mocked: aioresponses, verb: str, method: str, url: str, body: Any
) -> None:
    mocked.add(url, method, payload=ENVELOPE)
    async with client() as spark:
        response = await getattr(spark.batches.of(" b1 "), verb)()  # the id is trimmed
    assert response.status == 200
    assert response.data == ENVELOPE
    (call,) = calls(mocked, method, url)
    assert (sent_json(call) if body is not None else call.kwargs["data"]) == body


@pytest.mark.parametrize(("max_chunks", "sent"), [(None, "100"), (2, "2"), (1, "1")])
async def test_pull_sends_max(mocked: aioresponses, max_chunks: int | None, sent: str) -> None:
    mocked.get(
        re.compile(rf"{re.escape(API)}/b1/chunkresults.*"), payload={"data": [], "status": STATUS}
    )
    async with client() as spark:
        pipeline = spark.batches.of("b1")
        result = await (pipeline.pull() if max_chunks is None else pipeline.pull(max_chunks))
    assert result.parsed.data == []
    assert result.parsed.status is not None
    ((_, url),) = mocked.requests.keys()
    assert url.path.endswith("/batch/b1/chunkresults")
    assert dict(url.query) == {"max": sent}


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
async def test_pull_rejects_bad_max(mocked: aioresponses, bad: Any) -> None:
    async with client() as spark:
        with pytest.raises(sdk.SparkSdkError, match="max_chunks"):
            await spark.batches.of("b1").pull(bad)
    assert mocked.requests == {}


async def test_push_bodies(mocked: aioresponses) -> None:
    url = f"{API}/b1/chunks"
    mocked.post(url, payload=STATUS, repeat=True)
    summary = {"ignore_error": False, "aggregation": [{"output_name": "total", "operator": "SUM"}]}
    async with client() as spark:
        pipeline = spark.batches.of("b1")
        await pipeline.push(inputs=[{"value": 42}, {"value": 43}])
        await pipeline.push(inputs=[["value"], [42], [43]])
        await pipeline.push(
            data=ChunkData(inputs=[{"v": 1}], parameters={"common": 40}, summary=summary)
        )
        await pipeline.push(
            chunks=[BatchChunk(id="mine", size=2, data=ChunkData(inputs=[{"v": 1}, {"v": 2}]))]
        )
        await pipeline.push(raw='{"chunks": [{"id": "raw-1", "data": {"inputs": [{"v": 9}]}}]}')
        await pipeline.push(chunks=create_chunks([["v"], [1], [2], [3]], chunk_size=2))
    bodies = [sent_json(c)["chunks"] for c in calls(mocked, "POST", url)]
    assert [[(c["size"], c["data"]["inputs"]) for c in b] for b in bodies] == [
        [(2, [{"value": 42}, {"value": 43}])],
        [(2, [["value"], [42], [43]])],  # size counts records, not the header row
        [(1, [{"v": 1}])],
        [(2, [{"v": 1}, {"v": 2}])],
        [(1, [{"v": 9}])],
        [(2, [["v"], [1], [2]]), (1, [["v"], [3]])],
    ]
    assert bodies[0][0]["data"] == {"inputs": [{"value": 42}, {"value": 43}], "parameters": {}}
    assert bodies[2][0]["data"]["parameters"] == {"common": 40}
    assert bodies[2][0]["data"]["summary"] == summary
    assert bodies[3][0]["id"] == "mine"
    assert bodies[4][0]["id"] == "raw-1"
    assert all(uuid.UUID(b[0]["id"]) for b in (bodies[0], bodies[1], bodies[2]))


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="nothing"),
        pytest.param({"inputs": [{"a": 1}], "raw": "[]"}, id="two"),
        pytest.param({"inputs": []}, id="empty-inputs"),
        pytest.param({"chunks": []}, id="empty-chunks"),
        pytest.param({"raw": '{"chunks": []}'}, id="empty-raw"),
        pytest.param({"inputs": [["header-only"]]}, id="header-only"),
        pytest.param({"inputs": "abc"}, id="string-inputs"),
        pytest.param({"data": {"inputs": [1]}}, id="data-not-chunkdata"),
        pytest.param({"inputs": [{"a": object()}]}, id="not-serialisable"),
        pytest.param({"inputs": [{"a": 1}], "if_chunk_id_duplicated": "nope"}, id="bad-policy"),
    ],
)
async def test_push_refusals_send_nothing(mocked: aioresponses, kwargs: dict[str, Any]) -> None:
    async with client() as spark:
        pipeline = spark.batches.of("b1")
        with pytest.raises(sdk.SparkSdkError):
            await pipeline.push(**kwargs)
        assert pipeline.stats.chunks == 0
    assert mocked.requests == {}


# ---- retries -------------------------------------------------------------------------------


async def test_retry_schedule_and_one_request_id(mocked: aioresponses, sleeps: Sleeps) -> None:
    url = f"{API}/b1/status"
    mocked.get(url, status=503)
    mocked.get(url, status=500, body="oops")
    mocked.get(url, status=200, payload=STATUS)
    async with client(sleeps, retry_interval=0.5) as spark:
        response = await spark.batches.of("b1").get_status()
    assert response.data == STATUS
    assert sleeps.delays == [0.5, 1.0]  # ceilings of full jitter: interval * 2**n
    ids = {c.kwargs["headers"]["x-request-id"] for c in calls(mocked, "GET", url)}
    assert len(calls(mocked, "GET", url)) == 3
    assert len(ids) == 1


async def test_jitter_is_drawn_from_the_rng(mocked: aioresponses, sleeps: Sleeps) -> None:
    url = f"{API}/b1/status"
    for _ in range(3):
        mocked.get(url, status=502)
    mocked.get(url, payload=STATUS)
    async with client(sleeps, max_retries=3, retry_interval=1.0) as spark:
        spark = spark.with_options(policy=attrs.evolve(spark.policy, rng=random.Random(3)))
        await spark.batches.of("b1").get_status()
    expected_rng = random.Random(3)
    assert sleeps.delays == [expected_rng.uniform(0, 2.0**n) for n in range(3)]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "1", "x-retry-after": "0.250"}, 0.25, id="x-retry-after"),
        pytest.param({"Retry-After": "3"}, 3.0, id="retry-after"),
        pytest.param({"Retry-After": "9999"}, 60.0, id="capped"),
        pytest.param({}, 1.0, id="no-header-backoff"),
    ],
)
async def test_retry_after_is_honoured(
    mocked: aioresponses, sleeps: Sleeps, headers: dict[str, str], expected: float
) -> None:
    url = f"{API}/b1/chunks"
    mocked.post(
        url,
        status=429,
        headers=headers,
        payload={"status": 429, "error": {"code": "INPUT_BUFFER_FULL", "message": "full"}},
    )
    mocked.post(url, payload=STATUS)
    async with client(sleeps) as spark:
        await spark.batches.of("b1").push(inputs=[{"v": 1}])
    assert sleeps.delays == [expected]


async def test_rate_limit_exhausted(mocked: aioresponses, sleeps: Sleeps) -> None:
    url = f"{API}/b1/chunks"
    mocked.post(
        url,
        status=429,
        headers={"x-retry-after": "0.1"},
        repeat=True,
        payload={"status": 429, "error": {"code": "INPUT_BUFFER_FULL", "message": "full"}},
    )
    async with client(sleeps) as spark:
        pipeline = spark.batches.of("b1")
        with pytest.raises(sdk.RateLimitError) as info:
            await pipeline.push(chunks=[BatchChunk(id="c1", data=ChunkData(inputs=[{"v": 1}]))])
        # A failed push frees its ids: the same chunk can be pushed again under 'throw'.
        assert pipeline.stats.chunks == 0
        with pytest.raises(sdk.RateLimitError):
            await pipeline.push(
                chunks=[BatchChunk(id="c1", data=ChunkData(inputs=[{"v": 1}]))],
                if_chunk_id_duplicated="throw",
            )
    error = info.value
    assert (error.status, error.attempts, error.retry_after) == (429, 3, 0.1)
    assert error.error_code == "INPUT_BUFFER_FULL"
    assert sleeps.delays == [0.1] * 4


async def test_max_retries_zero_disables_retries(mocked: aioresponses, sleeps: Sleeps) -> None:
    url = f"{API}/b1/status"
    mocked.get(url, status=503, repeat=True)
    async with client(sleeps, max_retries=0) as spark:
        with pytest.raises(sdk.ServiceUnavailableError) as info:
            await spark.batches.of("b1").get_status()
    assert info.value.attempts == 1
    assert len(calls(mocked, "GET", url)) == 1
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, sdk.BadRequestError),
        (403, sdk.ForbiddenError),
        (404, sdk.NotFoundError),
        (409, sdk.ConflictError),
        (413, sdk.PayloadTooLargeError),
        (422, sdk.UnprocessableEntityError),
        (501, sdk.UnknownApiError),
    ],
)
async def test_client_errors_are_not_retried(
    mocked: aioresponses, sleeps: Sleeps, status: int, cls: type[sdk.SparkApiError]
) -> None:
    url = f"{API}/b1/status"
    mocked.get(url, status=status, payload={"error": {"code": "X", "message": "no"}}, repeat=True)
    async with client(sleeps) as spark:
        with pytest.raises(cls) as info:
            await spark.batches.of("b1").get_status()
    assert info.value.status == status
    assert info.value.attempts == 1
    assert len(calls(mocked, "GET", url)) == 1
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("exception", "cls"),
    [
        pytest.param(
            aiohttp.ClientConnectionError("refused"), sdk.SparkConnectionError, id="connection"
        ),
        pytest.param(aiohttp.ServerDisconnectedError(), sdk.SparkConnectionError, id="reset"),
        pytest.param(
            aiohttp.ClientPayloadError("truncated body"), sdk.SparkConnectionError, id="truncated"
        ),
        pytest.param(asyncio.TimeoutError(), sdk.SparkTimeoutError, id="timeout"),
        pytest.param(aiohttp.ServerTimeoutError("read"), sdk.SparkTimeoutError, id="read-timeout"),
    ],
)
async def test_transport_failures_retry_then_translate(
    mocked: aioresponses, sleeps: Sleeps, exception: Exception, cls: type[Exception]
) -> None:
    url = f"{API}/b1/status"
    mocked.get(url, exception=exception)
    mocked.get(url, payload=STATUS)
    async with client(sleeps) as spark:
        assert (await spark.batches.of("b1").get_status()).data == STATUS
        mocked.get(url, exception=exception, repeat=True)
        with pytest.raises(cls) as info:
            await spark.batches.of("b1").get_status()
    error = info.value
    assert isinstance(error, sdk.SparkConnectionError)
    assert not isinstance(error, aiohttp.ClientError)  # aiohttp types never leak
    assert error.attempts == 3
    assert error.method == "GET"
    assert error.url == url
    assert error.request_id
    assert error.request_id in str(error)
    assert len(sleeps.delays) == 1 + 2


async def test_cancelled_call_is_never_retried(mocked: aioresponses, sleeps: Sleeps) -> None:
    started = asyncio.Event()

    async def hang(url: URL, **kwargs: Any) -> CallbackResult:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    url = f"{API}/b1/status"
    mocked.get(url, callback=hang, repeat=True)
    async with client(sleeps) as spark:
        task = asyncio.create_task(spark.batches.of("b1").get_status())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(calls(mocked, "GET", url)) == 1
    assert sleeps.delays == []


# ---- bodies that are not the documented JSON -------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param("<html><body>Sign in</body></html>", "text/html", id="html"),
        pytest.param('{"batch_status": "in_pro', "application/json", id="truncated-json"),
        pytest.param("", "application/json", id="empty"),
    ],
)
async def test_unusable_success_bodies(mocked: aioresponses, body: str, content_type: str) -> None:
    url = f"{API}/b1/status"
    mocked.get(url, status=200, body=body, content_type=content_type)
    async with client() as spark:
        with pytest.raises(sdk.InvalidResponseError) as info:
            await spark.batches.of("b1").get_status()
    assert info.value.status == 200
    assert "expected JSON" in str(info.value)
    assert len(calls(mocked, "GET", url)) == 1


async def test_html_error_page_after_retries(mocked: aioresponses, sleeps: Sleeps) -> None:
    url = f"{API}/b1/status"
    mocked.get(
        url,
        status=502,
        body="<html><h1>502 Bad Gateway</h1></html>",
        content_type="text/html",
        repeat=True,
    )
    async with client(sleeps) as spark:
        with pytest.raises(sdk.BadGatewayError) as info:
            await spark.batches.of("b1").get_status()
    error = info.value
    assert error.status == 502
    assert error.attempts == 3
    assert error.error_code is None
    assert "502 Bad Gateway" in str(error)
    assert "<html>" in error.body


async def test_redirects_are_reported_not_followed(mocked: aioresponses) -> None:
    url = f"{API}/b1/status"
    mocked.get(url, status=302, headers={"Location": "https://login.example.com/"})
    async with client() as spark:
        with pytest.raises(sdk.UnknownApiError) as info:
            await spark.batches.of("b1").get_status()
    assert info.value.status == 302
    assert info.value.headers["Location"] == "https://login.example.com/"


# ---- OAuth2 ------------------------------------------------------------------------------------


class TokenServer:
    """A token endpoint handing out tok1, tok2, ...; records each form it receives."""

    def __init__(self, expires_in: float = 300) -> None:
        self.forms: list[dict[str, list[str]]] = []
        self.headers: list[dict[str, str]] = []
        self.expires_in = expires_in

    def __call__(self, url: URL, **kwargs: Any) -> CallbackResult:
        self.forms.append(parse_qs(kwargs["data"].decode()))
        self.headers.append(dict(kwargs["headers"]))
        return CallbackResult(
            payload={
                "access_token": f"tok{len(self.forms)}",
                "expires_in": self.expires_in,
                "token_type": "Bearer",
                "not-before-policy": 0,
            }
        )


def bearer_of(call: Any) -> str:
    return str(call.kwargs["headers"]["Authorization"])


OAUTH = {"client_id": "cid", "client_secret": CLIENT_SECRET}


async def test_token_is_fetched_before_the_first_call(mocked: aioresponses) -> None:
    tokens = TokenServer()
    mocked.post(TOKEN_URL, callback=tokens, repeat=True)
    mocked.get(f"{API}/status", payload={}, repeat=True)
    async with client(oauth=OAUTH) as spark:
        await asyncio.gather(*(spark.batches.describe() for _ in range(5)))
    assert len(tokens.forms) == 1  # concurrent first calls share one fetch
    assert tokens.forms[0] == {
        "grant_type": ["client_credentials"],
        "client_id": ["cid"],
        "client_secret": [CLIENT_SECRET],
    }
    token_headers = tokens.headers[0]
    assert "Authorization" not in token_headers  # never "Bearer None"
    assert token_headers["Content-Type"] == "application/x-www-form-urlencoded"
    api_calls = calls(mocked, "GET", f"{API}/status")
    assert len(api_calls) == 5
    assert {bearer_of(c) for c in api_calls} == {"Bearer tok1"}


async def test_token_is_refreshed_shortly_before_expiry(mocked: aioresponses) -> None:
    tokens = TokenServer(expires_in=300)
    mocked.post(TOKEN_URL, callback=tokens, repeat=True)
    mocked.get(f"{API}/status", payload={}, repeat=True)
    now = [1000.0]
    async with client(oauth=OAUTH) as spark:
        auth = spark._http.auth
        assert isinstance(auth, OAuth2Auth)
        auth.clock = lambda: now[0]
        await spark.batches.describe()  # fetch at t=1000, expires at 1300
        now[0] = 1260.0
        await spark.batches.describe()  # still fresh
        now[0] = 1275.0
        await spark.batches.describe()  # within the margin: refreshed first
    assert [bearer_of(c) for c in calls(mocked, "GET", f"{API}/status")] == [
        "Bearer tok1",
        "Bearer tok1",
        "Bearer tok2",
    ]


async def test_token_is_refreshed_once_on_401(mocked: aioresponses, sleeps: Sleeps) -> None:
    tokens = TokenServer()
    mocked.post(TOKEN_URL, callback=tokens, repeat=True)
    url = f"{API}/status"
    mocked.get(url, status=401, payload={"error": {"code": "UNAUTHORIZED", "message": "expired"}})
    mocked.get(url, payload={})
    async with client(sleeps, oauth=OAUTH, max_retries=0) as spark:
        await spark.batches.describe()  # works even with retries disabled
        mocked.get(url, status=401, repeat=True)
        with pytest.raises(sdk.UnauthorizedError):
            await spark.batches.describe()
    assert [bearer_of(c) for c in calls(mocked, "GET", url)] == [
        "Bearer tok1",
        "Bearer tok2",
        "Bearer tok2",
        "Bearer tok3",
    ]
    assert len(tokens.forms) == 3
    assert sleeps.delays == []


async def test_wrong_client_secret(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, status=401, payload={"error": "invalid_client"})
    async with client(oauth=OAUTH) as spark:
        with pytest.raises(sdk.UnauthorizedError) as info:
            await spark.batches.describe()
    assert info.value.url == TOKEN_URL
    assert calls(mocked, "GET", f"{API}/status") == []  # the API was never called


async def test_token_response_without_access_token(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, payload={"token_type": "Bearer"})
    async with client(oauth=OAUTH) as spark:
        with pytest.raises(sdk.InvalidResponseError, match="access_token"):
            await spark.batches.describe()


async def test_api_key_401_is_not_retried(mocked: aioresponses, sleeps: Sleeps) -> None:
    mocked.get(f"{API}/status", status=401, repeat=True)
    async with client(sleeps) as spark:
        with pytest.raises(sdk.UnauthorizedError):
            await spark.batches.describe()
    assert len(calls(mocked, "GET", f"{API}/status")) == 1


# ---- secrets -----------------------------------------------------------------------------------


async def test_secrets_never_reach_logs_or_errors(
    mocked: aioresponses, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = TokenServer()
    mocked.post(TOKEN_URL, callback=tokens, repeat=True)
    # A server that echoes every credential back in its error message.
    echo = {"error": {"code": "BAD", "message": f"got {KEY}, tok1, {CLIENT_SECRET}, {BEARER}"}}
    url = f"{API}/b1/status"
    cases = [
        ({"api_key": KEY}, KEY),
        ({"token": BEARER}, BEARER),
        ({"oauth": OAUTH}, "tok1"),
        ({"oauth": OAUTH}, CLIENT_SECRET),
    ]
    with caplog.at_level(logging.DEBUG, logger="cspark_async"):
        for kwargs, secret in cases:
            mocked.get(url, status=503)
            mocked.get(url, status=400, payload=echo)
            async with client(sleeps, **kwargs) as spark:
                with pytest.raises(sdk.BadRequestError) as info:
                    await spark.batches.of("b1").get_status()
                error = info.value
                for text in (
                    str(error),
                    repr(error),
                    error.body,
                    repr(spark),
                    repr(spark.options),
                    repr(spark._http.auth),
                ):
                    assert secret not in text
                assert "****" in str(error)
    assert "retrying GET" in caplog.text
    assert "'****'" in caplog.text
    for secret in (KEY, BEARER, CLIENT_SECRET, "tok1"):
        assert secret not in caplog.text
