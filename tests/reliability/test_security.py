"""Security: credentials never leak, TLS is verified, redirects are not
followed, and the emulator is safe by default.

- API keys, bearer tokens, OAuth client secrets and access tokens never appear in logs (every
  logger at DEBUG, real flows with retries and errors against the emulator), reprs, exception
  messages (a 401, a connection error, a server that echoes what it received) or str(config).
- TLS certificates are verified by default: the client's own session verifies, and a
  self-signed loopback server is refused before any request (or credential) reaches it.
- A redirect is reported, never followed, so a credential never reaches another host.
- The emulator binds 127.0.0.1 unless told otherwise, and enforces credentials on every API
  route when configured with them.
"""

from __future__ import annotations

import base64
import logging
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import aiohttp
import anyio
import pytest
from aiohttp import web
from attrs import frozen

import cspark_async as sdk
from cspark_async import AsyncClient, ClientOptions
from cspark_async._auth import OAuth2Auth
from cspark_async.emulator import Emulator, Faults, ThreadedEmulator
from cspark_async.emulator.__main__ import _parser as emulator_cli

from ._loopback import Loopback, loopback, traced_client

API_KEY = "sk-live-api-key-5f0e2c1d"
BEARER = "opaque-token-9a8b7c6d5e"
CLIENT_ID = "ingest-app"
CLIENT_SECRET = "oauth-client-secret-3c4d"
WRONG_KEY = "sk-wrong-key-77aa88bb"
SERVICE = "my-folder/my-service"
TOKEN_PATH = "/auth/realms/{tenant}/protocol/openid-connect/token"


def bug(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"BUG: {reason}")


@frozen
class Credential:
    """One way of authenticating: client arguments, emulator arguments, the secrets involved."""

    client: dict[str, Any]
    emulator: dict[str, Any]
    secrets: tuple[str, ...]


CREDENTIALS = [
    pytest.param(Credential({"api_key": API_KEY}, {"api_key": API_KEY}, (API_KEY,)), id="api-key"),
    pytest.param(Credential({"token": BEARER}, {"token": BEARER}, (BEARER,)), id="bearer-token"),
    pytest.param(
        Credential(
            {"oauth": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}},
            {"oauth_clients": {CLIENT_ID: CLIENT_SECRET}},
            (CLIENT_SECRET,),
        ),
        id="oauth",
    ),
]


def assert_clean(texts: list[str], secrets: list[str] | tuple[str, ...]) -> None:
    for secret in secrets:
        assert secret, "an empty secret proves nothing"
        for text in texts:
            assert secret not in text, f"{secret!r} leaked in {text[:300]!r}"


def error_texts(error: BaseException) -> list[str]:
    """Everything an error shows: message, repr, body, the chained cause, notes."""
    texts = [str(error), repr(error), *getattr(error, "__notes__", [])]
    for name in ("body", "error_message", "url"):
        value = getattr(error, name, None)
        if isinstance(value, str):
            texts.append(value)
    if error.__cause__ is not None:
        texts += [str(error.__cause__), repr(error.__cause__)]
    return texts


@pytest.fixture(autouse=True)
def _no_cspark_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BASE_URL", "API_KEY", "BEARER_TOKEN", "CLIENT_ID", "CLIENT_SECRET", "OAUTH_PATH"):
        monkeypatch.delenv(f"CSPARK_{name}", raising=False)


# ---- logs, reprs and messages over real flows -------------------------------------------------


@pytest.mark.parametrize("cred", CREDENTIALS)
async def test_no_secret_in_logs_reprs_or_errors_across_real_flows(
    cred: Credential, caplog: pytest.LogCaptureFixture
) -> None:
    """Every verb, a stream, retries after injected faults, a 404, a 401 and a connection error,
    with every logger at DEBUG."""
    caplog.set_level(logging.DEBUG)  # the root logger: the SDK's, the emulator's, aiohttp's
    faults = Faults(
        seed=11,
        server_error=0.15,
        rate_limit=0.1,
        reset_before=0.05,
        endpoints={"describe", "create", "info", "status", "push", "pull"},
    )
    secrets = list(cred.secrets)
    texts: list[str] = []
    async with Emulator(workers=2, faults=faults, **cred.emulator) as emu:
        async with AsyncClient(
            emu.base_url, max_retries=8, retry_interval=0.001, **cred.client
        ) as spark:
            await spark.batches.describe()
            created = await spark.batches.create(SERVICE)
            pipeline = spark.batches.of(created.data["id"])
            pushed = await pipeline.push(inputs=[{"n": n} for n in range(10)])
            status = await pipeline.get_status()
            for _ in range(500):
                if (await pipeline.pull()).data["data"]:
                    break
                await anyio.sleep(0.01)
            else:
                pytest.fail("the pushed records never came back")
            await pipeline.cancel()
            stream = spark.batches.stream_outputs(
                SERVICE, [{"n": n} for n in range(100)], chunk_size=10
            )
            async with stream:
                assert sum([r.records async for r in stream]) == 100
            with pytest.raises(sdk.NotFoundError) as not_found:
                await spark.batches.of("no-such-batch").get_info()
            auth = spark._http.auth
            if isinstance(auth, OAuth2Auth):
                assert auth.token is not None
                secrets.append(auth.token)  # the access token is a secret too
                first = auth.token
                auth.clock = lambda: 1e12  # expired: the next call fetches a new token
                await spark.batches.describe()
                assert auth.token is not None
                assert auth.token != first
                secrets.append(auth.token)
            texts += [
                repr(spark),
                repr(spark.options),
                str(spark.options),
                repr(auth),
                repr(pipeline),
                repr(stream),
                repr(created),
                repr(pushed),
                repr(status),
                repr(emu),
                *error_texts(not_found.value),
            ]
        # A wrong credential: a 401 from the emulator.
        wrong = (
            {"api_key": WRONG_KEY}
            if "api_key" in cred.client
            else {"token": WRONG_KEY}
            if "token" in cred.client
            else {"oauth": {"client_id": CLIENT_ID, "client_secret": WRONG_KEY}}
        )
        async with AsyncClient(emu.base_url, max_retries=0, **wrong) as rejected:
            with pytest.raises(sdk.UnauthorizedError) as unauthorized:
                await rejected.batches.describe()
        texts += error_texts(unauthorized.value)
        port = emu.port
    # A connection error: the same credential, nobody listening any more.
    async with AsyncClient(
        f"http://127.0.0.1:{port}/emulator", max_retries=1, retry_interval=0.001, **cred.client
    ) as gone:
        with pytest.raises(sdk.SparkConnectionError) as refused:
            await gone.batches.describe()
    texts += error_texts(refused.value)

    assert sum(emu.faults.injected.values()) > 0  # the flow did go through retries...
    assert "retrying" in caplog.text
    assert "****" in caplog.text  # ...and the credential headers were logged, masked
    texts += [record.getMessage() for record in caplog.records]
    texts.append(caplog.text)
    assert_clean(texts, [*secrets, WRONG_KEY])


async def test_no_secret_in_a_timeout_error() -> None:
    release = anyio.Event()

    async def stalls(_request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.json_response({})

    async with loopback(stalls) as server:
        try:
            async with AsyncClient(
                server.base_url(), api_key=API_KEY, timeout=0.1, max_retries=0
            ) as spark:
                with pytest.raises(sdk.SparkTimeoutError) as info:
                    await spark.batches.describe()
        finally:
            release.set()
    assert "timed out after 0.1s" in str(info.value)
    assert_clean(error_texts(info.value), [API_KEY])


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(
            lambda tmp: ClientOptions.from_env(
                "http://127.0.0.1:9/t", environ={"CSPARK_API_KEY": API_KEY}
            ),
            id="api-key-from-env",
        ),
        pytest.param(
            lambda tmp: ClientOptions.from_env(
                "http://127.0.0.1:9/t", environ={"CSPARK_BEARER_TOKEN": f"Bearer {BEARER}"}
            ),
            id="token-from-env",
        ),
        pytest.param(
            lambda tmp: ClientOptions.from_env(
                "http://127.0.0.1:9/t",
                environ={"CSPARK_CLIENT_ID": CLIENT_ID, "CSPARK_CLIENT_SECRET": CLIENT_SECRET},
            ),
            id="oauth-from-env",
        ),
        pytest.param(
            lambda tmp: ClientOptions.from_env(
                "http://127.0.0.1:9/t", oauth=oauth_file(tmp), environ={}
            ),
            id="oauth-from-file",
        ),
        pytest.param(
            lambda tmp: ClientOptions.from_env(
                f"http://user:{API_KEY}@127.0.0.1:9/t", token=BEARER, environ={}
            ),
            id="password-in-the-url",
        ),
    ],
)
def test_no_secret_in_str_or_repr_of_config(
    options: Callable[[Path], ClientOptions], tmp_path: Path
) -> None:
    """tests/unit/test_config.py::test_secrets_never_in_repr_or_str covers explicit arguments;
    these are the other ways a secret gets into a configuration."""
    resolved = options(tmp_path)
    client = AsyncClient.from_options(resolved)
    texts = [
        str(resolved),
        repr(resolved),
        repr(resolved.base_url),
        resolved.base_url.full,
        repr(resolved.oauth),
        repr(client),
        repr(client._http.auth),
    ]
    assert_clean(texts, [API_KEY, BEARER, CLIENT_SECRET])


def oauth_file(directory: Path) -> Path:
    path = directory / "oauth.json"
    path.write_text(f'{{"client_id": "{CLIENT_ID}", "client_secret": "{CLIENT_SECRET}"}}')
    return path


# ---- a server that echoes what it received ------------------------------------------------------


def echo(status: int, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Answers `status` with every header and the body it received, as a careless server or a
    debugging proxy might. Its token endpoint hands out ACCESS_TOKEN."""

    async def handler(request: web.Request) -> web.Response:
        if request.path.endswith("/openid-connect/token"):
            return web.json_response({"access_token": ACCESS_TOKEN, "expires_in": 300})
        received = f"headers={dict(request.headers)!r} body={(await request.text())!r}"
        if content_type == "application/json":
            return web.json_response(
                {"error": {"code": "ECHO", "message": received}}, status=status
            )
        return web.Response(
            status=status, text=f"<html><body>{received}</body></html>", content_type=content_type
        )

    return handler


ACCESS_TOKEN = "oauth-access-token-e1f2a3b4"

ECHOES = [
    pytest.param(400, "application/json", sdk.BadRequestError, id="400-json-message"),
    pytest.param(401, "text/html", sdk.UnauthorizedError, id="401-html"),
    pytest.param(502, "text/html", sdk.BadGatewayError, id="502-html-after-retries"),
    pytest.param(200, "text/html", sdk.InvalidResponseError, id="200-not-json"),
]


@pytest.mark.parametrize("cred", CREDENTIALS)
@pytest.mark.parametrize(("status", "content_type", "error_class"), ECHOES)
async def test_no_secret_in_errors_when_the_server_echoes_it(
    cred: Credential, status: int, content_type: str, error_class: type[sdk.SparkApiError]
) -> None:
    async with (
        loopback(echo(status, content_type)) as server,
        traced_client(server.base_url(), retry_interval=0.001, **cred.client) as (spark, log),
    ):
        with pytest.raises(error_class) as info:
            await spark.batches.describe()
    sent = ACCESS_TOKEN if "oauth" in cred.client else cred.secrets[0]
    assert sent in str([r.headers for r in server.received if "/api/" in r.path])  # echoed...
    assert_clean(error_texts(info.value), [*cred.secrets, ACCESS_TOKEN])
    assert "****" in info.value.body  # ...and masked


async def test_no_client_secret_in_errors_when_the_token_endpoint_echoes_it() -> None:
    async def token_rejects(request: web.Request) -> web.Response:
        form = await request.text()
        return web.Response(
            status=401, text=f"<html>bad client: {form}</html>", content_type="text/html"
        )

    oauth = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    async with (
        loopback(token_rejects) as server,
        AsyncClient(server.base_url(), oauth=oauth, max_retries=0) as spark,
    ):
        with pytest.raises(sdk.UnauthorizedError) as info:
            await spark.batches.describe()
    assert CLIENT_SECRET in server.received[0].body.decode()  # it was echoed...
    assert "/openid-connect/token" in info.value.url
    assert_clean(error_texts(info.value), [CLIENT_SECRET])  # ...and scrubbed


async def test_a_client_secret_echoed_encoded_is_scrubbed_too() -> None:
    # A secret with characters a form body percent-encodes, echoed URL-encoded in the body,
    # base64 in a Basic challenge, and raw in a header.
    secret = "s3cr/t+key=&ok~2"
    basic = base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode()

    async def token_rejects(request: web.Request) -> web.Response:
        form = await request.text()
        return web.Response(
            status=401,
            text=f'{{"error": "invalid_client", "form": "{form}", "basic": "{basic}"}}',
            content_type="application/json",
            headers={"WWW-Authenticate": f"Basic {basic}", "X-Echo": secret},
        )

    oauth = {"client_id": CLIENT_ID, "client_secret": secret}
    async with (
        loopback(token_rejects) as server,
        AsyncClient(server.base_url(), oauth=oauth, max_retries=0) as spark,
    ):
        with pytest.raises(sdk.UnauthorizedError) as info:
            await spark.batches.describe()
    assert quote_plus(secret) in server.received[0].body.decode()  # sent encoded, echoed so
    texts = [*error_texts(info.value), *info.value.headers.values(), repr(info.value.headers)]
    assert_clean(texts, [secret, quote_plus(secret), quote(secret, safe=""), basic])


async def test_no_secret_in_a_stream_error_when_the_server_echoes_it() -> None:
    async def echo_in_pull(request: web.Request) -> web.Response:
        if request.path.endswith("/chunks"):
            return web.json_response({"batch_status": "in_progress"})
        if request.path.endswith("/chunkresults"):  # well-formed JSON, wrong shape, an echo
            return web.json_response({"data": f"{dict(request.headers)!r}", "status": {}})
        return web.json_response({"object": "batch", "id": "b1", "data": {}})

    async with (
        loopback(echo_in_pull) as server,
        AsyncClient(server.base_url(), api_key=API_KEY, max_retries=0) as spark,
    ):
        stream = spark.batches.of("b1").stream_outputs(
            [{"n": 1}], max_in_flight=1, max_chunk_bytes=4096
        )
        # An unreadable answer is a lost one: with max_retries=0, the stream ends there.
        with pytest.raises(sdk.StreamError, match="'data' is not a list") as info:
            async with stream:
                async for _ in stream:
                    pass
    assert_clean(error_texts(info.value), [API_KEY])


# ---- TLS ----------------------------------------------------------------------------------------


async def test_the_clients_own_session_verifies_certificates() -> None:
    async with Emulator() as emu, AsyncClient(emu.base_url, api_key="open") as spark:
        await spark.batches.describe()  # the session is created on first use
        session = spark._http.session
        assert session is not None
        connector = session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        # aiohttp: `True` means "verify with the default context"; False or a fingerprint
        # or a custom context would mean someone weakened it.
        assert connector._ssl is True
        assert session.trust_env is False  # no proxy picked up from the environment either


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize("cred", CREDENTIALS)
async def test_a_self_signed_server_is_refused_before_any_credential_is_sent(
    cred: Credential, self_signed: ssl.SSLContext
) -> None:
    received: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        received.append(request.path)
        return web.json_response({"access_token": ACCESS_TOKEN})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self_signed).start()
        port = runner.addresses[0][1]
        async with AsyncClient(
            f"https://127.0.0.1:{port}/tenant", max_retries=0, **cred.client
        ) as spark:
            with pytest.raises(sdk.SparkConnectionError) as info:
                await spark.batches.describe()
    finally:
        await runner.cleanup()
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert received == []  # no request, so no credential, reached the server
    assert_clean(error_texts(info.value), cred.secrets)


# ---- redirects ---------------------------------------------------------------------------------


@asynccontextmanager
async def redirecting(
    status: int, path_filter: str = ""
) -> AsyncIterator[tuple[Loopback, Loopback]]:
    """Server A redirects (with `status`) every request whose path contains `path_filter` to
    server B, another host:port that records whatever reaches it; other requests get a token."""

    async def elsewhere(_request: web.Request) -> web.Response:
        return web.json_response({"access_token": ACCESS_TOKEN, "id": "b1"})

    async with loopback(elsewhere) as other:

        async def redirect(request: web.Request) -> web.Response:
            if path_filter in request.path:
                return web.Response(status=status, headers={"Location": f"{other.url}/steal"})
            return web.json_response({"access_token": ACCESS_TOKEN, "expires_in": 300})

        async with loopback(redirect) as origin:
            yield origin, other


Call = Callable[[AsyncClient], Awaitable[Any]]


async def push_via_stream(spark: AsyncClient) -> None:
    stream = spark.batches.of("b1").stream_outputs(
        [{"n": 1}], max_in_flight=1, max_chunk_bytes=4096
    )
    async with stream:
        async for _ in stream:
            pass


CALLS = [
    pytest.param(302, lambda spark: spark.batches.describe(), id="302-get"),
    pytest.param(307, lambda spark: spark.batches.create(SERVICE), id="307-post-create"),
    pytest.param(
        308, lambda spark: spark.batches.of("b1").push(inputs=[{"n": 1}]), id="308-post-push"
    ),
    pytest.param(301, lambda spark: spark.batches.of("b1").cancel(), id="301-patch"),
    pytest.param(307, push_via_stream, id="307-push-in-a-stream"),
]


@pytest.mark.parametrize("cred", CREDENTIALS)
@pytest.mark.parametrize(("status", "call"), CALLS)
@pytest.mark.parametrize("own_session", [True, False], ids=["own-session", "callers-session"])
async def test_a_redirect_to_another_host_is_not_followed(
    cred: Credential, status: int, call: Call, own_session: bool
) -> None:
    async with redirecting(status, "/api/") as (origin, other):
        if own_session:
            spark = AsyncClient(
                origin.base_url(), max_retries=2, retry_interval=0.001, **cred.client
            )
            async with spark:
                with pytest.raises(sdk.SparkApiError) as info:
                    await call(spark)
        else:
            # A caller's session follows redirects by default; the client must not let it.
            async with traced_client(origin.base_url(), max_retries=2, **cred.client) as (
                spark,
                _log,
            ):
                with pytest.raises(sdk.SparkApiError) as info:
                    await call(spark)
    assert other.received == []  # nothing, so no credential, reached the other host
    error = info.value
    assert isinstance(error, sdk.UnknownApiError)
    assert error.status == status
    if call is not push_via_stream:  # a stream may also have pulled and cancelled
        assert len([r for r in origin.received if "/api/" in r.path]) == 1  # not retried
    assert_clean(error_texts(error), [*cred.secrets, ACCESS_TOKEN])


async def test_a_redirected_token_request_does_not_carry_the_client_secret_away() -> None:
    oauth = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    async with (
        redirecting(307, "/openid-connect/token") as (origin, other),
        AsyncClient(origin.base_url(), oauth=oauth, max_retries=0) as spark,
    ):
        with pytest.raises(sdk.UnknownApiError) as info:
            await spark.batches.describe()
    assert info.value.status == 307
    assert other.received == []
    assert [r.path for r in origin.received] == [TOKEN_PATH.format(tenant="tenant")]


# ---- the emulator -------------------------------------------------------------------------------


async def test_the_emulator_binds_loopback_by_default() -> None:
    async with Emulator() as emu:
        assert emu.host == "127.0.0.1"
        assert emu.url.startswith("http://127.0.0.1:")
        runner = emu._runner
        assert runner is not None
        assert [host for host, *_ in runner.addresses] == ["127.0.0.1"]
    threaded = ThreadedEmulator()
    assert threaded.emulator.host == "127.0.0.1"
    assert emulator_cli("emulator").parse_args([]).host == "127.0.0.1"


async def test_the_emulator_binds_where_it_is_told() -> None:
    try:
        probe = socket.socket()
        probe.bind(("127.0.0.2", 0))
        probe.close()
    except OSError:
        pytest.skip("127.0.0.2 is not a loopback address here")
    async with Emulator(host="127.0.0.2") as emu:
        runner = emu._runner
        assert runner is not None
        assert [host for host, *_ in runner.addresses] == ["127.0.0.2"]


ROUTES = [
    pytest.param("GET", "/status", id="describe"),
    pytest.param("POST", "", id="create"),
    pytest.param("GET", "/{id}", id="info"),
    pytest.param("PATCH", "/{id}", id="patch"),
    pytest.param("GET", "/{id}/status", id="status"),
    pytest.param("POST", "/{id}/chunks", id="push"),
    pytest.param("GET", "/{id}/chunkresults", id="pull"),
]
BODIES = {
    "": {"service": SERVICE},
    "/{id}": {"batch_status": "cancelled"},
    "/{id}/chunks": {"chunks": [{"id": "c1", "data": {"inputs": [{"n": 1}]}}]},
}


@frozen
class Enforcing:
    emu: Emulator
    session: aiohttp.ClientSession
    batch_id: str

    async def call(self, method: str, path: str, headers: dict[str, str]) -> int:
        url = f"{self.emu.base_url}/api/v4/batch{path.format(id=self.batch_id)}"
        body = BODIES.get(path) if method != "GET" else None
        async with self.session.request(method, url, json=body, headers=headers) as resp:
            await resp.read()
            return resp.status


@pytest.fixture
async def enforcing() -> AsyncIterator[Enforcing]:
    """An emulator enforcing an API key, a token and an OAuth client, with one open batch."""
    async with (
        Emulator(api_key=API_KEY, token=BEARER, oauth_clients={CLIENT_ID: CLIENT_SECRET}) as emu,
        aiohttp.ClientSession() as session,
    ):
        headers = {"x-synthetic-key": API_KEY, "x-tenant-name": emu.tenant}
        url = f"{emu.base_url}/api/v4/batch"
        async with session.post(url, json={"service": SERVICE}, headers=headers) as resp:
            batch_id = (await resp.json())["id"]
        yield Enforcing(emu, session, batch_id)


def state_of(enforcing: Enforcing) -> tuple[Any, ...]:
    batches = list(enforcing.emu.engine.batches())
    return tuple((b.id, b.status, b.chunks_submitted) for b in batches)


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credential"),
        pytest.param({"x-synthetic-key": WRONG_KEY, "x-tenant-name": "emulator"}, id="wrong-key"),
        pytest.param({"Authorization": f"Bearer {WRONG_KEY}"}, id="wrong-token"),
        pytest.param({"Authorization": "Bearer None"}, id="bearer-none"),
        pytest.param({"Authorization": f"Basic {API_KEY}"}, id="key-as-basic-auth"),
    ],
)
async def test_the_emulator_enforces_credentials_on_every_route(
    enforcing: Enforcing, method: str, path: str, headers: dict[str, str]
) -> None:
    """tests/emulator/test_faults_and_auth.py::test_enforced_credentials covers GET /status;
    here every route refuses, and applies nothing."""
    before = state_of(enforcing)
    assert await enforcing.call(method, path, headers) == 401
    assert state_of(enforcing) == before


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"x-synthetic-key": API_KEY, "x-tenant-name": "emulator"}, id="api-key"),
        pytest.param({"Authorization": f"Bearer {BEARER}"}, id="token"),
    ],
)
async def test_the_emulator_accepts_its_credentials_on_every_route(
    enforcing: Enforcing, method: str, path: str, headers: dict[str, str]
) -> None:
    assert await enforcing.call(method, path, headers) == 200


async def test_the_emulator_issues_no_token_it_was_not_configured_for() -> None:
    async with Emulator(api_key=API_KEY) as emu, aiohttp.ClientSession() as session:
        token_url = emu.url + TOKEN_PATH.format(tenant=emu.tenant)
        form = {"grant_type": "client_credentials", "client_id": "anyone", "client_secret": "x"}
        async with session.post(token_url, data=form) as resp:
            status = resp.status
            token = (await resp.json()).get("access_token")
        describe = f"{emu.base_url}/api/v4/batch/status"
        async with session.get(describe, headers={"Authorization": f"Bearer {token}"}) as resp:
            api_status = resp.status
    assert status == 401
    assert api_status == 401


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/_emulator/reset", None, id="reset"),
        pytest.param("PUT", "/_emulator/faults", {"server_error": 1.0}, id="set-faults"),
    ],
)
async def test_the_emulators_control_plane_needs_credentials_when_configured(
    method: str, path: str, body: dict[str, Any] | None
) -> None:
    async with Emulator(api_key=API_KEY) as emu, aiohttp.ClientSession() as session:
        async with session.request(method, emu.url + path, json=body) as resp:
            assert resp.status == 401
        async with session.get(emu.url + "/_emulator/health") as resp:
            assert resp.status == 200  # health may stay open: it reveals nothing
