"""aiohttp.web layer of the emulator: routes, JSON, auth, tenant checks and fault injection.

Every request is parsed here and handed to the engine; every error becomes a JSON body
`{"status", "error": {"code", "message"}, "request_id"}` (an assumption: Spark documents none).
Client mistakes are always 4xx; a 500 only ever means a bug in the emulator or in a user's
service function.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Final

import orjson
from aiohttp import web
from attrs import frozen

from ._chunks import parse_push_body
from ._engine import Engine
from ._errors import EmulatorError
from ._faults import FaultInjector, Faults
from ._status_text import error_code, reason_phrase

__all__ = ["ENGINE_KEY", "FAULTS_KEY", "Auth", "build_app"]

log = logging.getLogger("cspark_async.emulator")

ENGINE_KEY: Final = web.AppKey("engine", Engine)
FAULTS_KEY: Final = web.AppKey("faults", FaultInjector)
_TOKENS_KEY: Final = web.AppKey("tokens", dict[str, float])
_COMPRESS_KEY: Final = web.AppKey("compress_min_bytes", int)  # 0: never compress answers

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@frozen(kw_only=True)
class Auth:
    """What the emulator demands. With nothing configured, any credential (or none) is accepted."""

    api_key: str | None = None
    token: str | None = None
    oauth_clients: Mapping[str, str] | None = None  # client_id -> client_secret
    token_ttl_s: float = 3600.0

    @property
    def enforced(self) -> bool:
        return bool(self.api_key or self.token or self.oauth_clients)

    def __repr__(self) -> str:  # secrets never appear in reprs
        return f"Auth(enforced={self.enforced})"


_AUTH_KEY: Final = web.AppKey("auth", Auth)


def _json(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(obj), status=status, content_type="application/json", headers=headers
    )


def _error(
    request: web.Request, status: int, code: str, message: str, **headers: str
) -> web.Response:
    body = {
        "status": status,
        "error": {"code": code, "message": message},
        "request_id": request.headers.get("x-request-id"),
    }
    response = _json(body, status, headers or None)
    response.set_status(status, reason_phrase(status))
    return response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except EmulatorError as exc:
        return _error(request, exc.status, exc.code, exc.message, **exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = error_code(exc.status)
        message = exc.text or exc.reason
        if exc.status == 404:
            message = f"no route for {request.method} {request.path}"
        elif exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        elif exc.status == 413:
            message = f"request body too large: {exc.text}"
        return _error(request, exc.status, code, message)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("emulator bug while handling %s %s", request.method, request.path)
        return _error(request, 500, "INTERNAL", "the emulator failed; see its log")


@web.middleware
async def _decorate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Echo `x-request-id` and compress an answer the client accepts compressed."""
    response = await handler(request)
    request_id = request.headers.get("x-request-id")
    if request_id is not None:
        response.headers["x-request-id"] = request_id
    minimum = request.app[_COMPRESS_KEY]
    if (
        minimum
        and isinstance(response, web.Response)
        and response.body is not None
        and len(response.body) >= minimum  # type: ignore[arg-type]  # bytes, set by _json
    ):
        coding = _accepted_coding(request.headers.get("Accept-Encoding", ""))
        if coding is not None:
            response.enable_compression(coding)
    return response


def _accepted_coding(header: str) -> web.ContentCoding | None:
    """gzip if the client accepts it, else deflate, else None (br needs the Brotli package)."""
    accepted = set()
    for item in header.lower().split(","):
        name, _, params = item.partition(";")
        _, _, q = params.strip().partition("q=")
        try:
            if q and float(q) <= 0:
                continue  # q=0: "not acceptable"
        except ValueError:
            continue
        accepted.add(name.strip())
    for coding in (web.ContentCoding.gzip, web.ContentCoding.deflate):
        if coding.value in accepted or "*" in accepted:
            return coding
    return None


def _check_tenant(request: web.Request, engine: Engine) -> None:
    tenant = request.match_info.get("tenant", "")
    expected = engine.options.tenant
    if tenant.lower() != expected.lower():
        raise EmulatorError.not_found(f"tenant {tenant!r} not found", "TENANT_NOT_FOUND")
    header = request.headers.get("x-tenant-name")
    # Only API keys are tied to the header; for a bearer token (or none) the URL's tenant
    # rules and a stale or different header is ignored, as newer Spark APIs do.
    keyed = "x-synthetic-key" in request.headers
    if keyed and header is not None and header.lower() != expected.lower():
        raise EmulatorError(
            403, "TENANT_MISMATCH", f"x-tenant-name {header!r} does not match the URL's tenant"
        )


def _check_auth(
    request: web.Request, auth: Auth, tokens: dict[str, float], *, tenant_header: bool = True
) -> None:
    if not auth.enforced:
        return
    key = request.headers.get("x-synthetic-key")
    if key is not None:
        if auth.api_key and secrets.compare_digest(key, auth.api_key):
            if tenant_header and "x-tenant-name" not in request.headers:
                raise EmulatorError(
                    401, "UNAUTHORIZED", "an API key needs the x-tenant-name header"
                )
            return
        raise EmulatorError(401, "UNAUTHORIZED", "invalid API key")
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and bearer:
        if auth.token and secrets.compare_digest(bearer, auth.token):
            return
        expiry = tokens.get(bearer)
        if expiry is not None and expiry > time.monotonic():
            return
        raise EmulatorError(401, "UNAUTHORIZED", "invalid or expired bearer token")
    raise EmulatorError(401, "UNAUTHORIZED", "no credential: send x-synthetic-key or Authorization")


def _endpoint(name: str, handler: Handler) -> Handler:
    """Wrap an API handler with tenant, auth and fault checks, in that order."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        app = request.app
        engine = app[ENGINE_KEY]
        _check_tenant(request, engine)
        _check_auth(request, app[_AUTH_KEY], app[_TOKENS_KEY])
        action, delay, status = app[FAULTS_KEY].draw(name)
        if delay:
            await asyncio.sleep(delay)
        if action == "reset_before":
            return _drop(request)
        if action == "rate_limit":
            retry = app[FAULTS_KEY].faults.retry_after
            return _error(
                request,
                429,
                "RATE_LIMITED",
                "injected fault: too many requests",
                **{"Retry-After": str(max(1, round(retry))), "x-retry-after": f"{retry:.3f}"},
            )
        if action == "server_error":
            return _error(request, status, "INJECTED_FAULT", f"injected fault: HTTP {status}")
        response = await handler(request)
        if action == "reset_after":
            return _drop(request)  # applied, but the client never sees the answer
        if action == "error_after":
            return _error(
                request,
                status,
                "INJECTED_FAULT",
                f"injected fault: HTTP {status} (the request was applied)",
            )
        return response

    return wrapped


def _drop(request: web.Request) -> web.Response:
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=204)  # written to a closed transport: goes nowhere


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        raise EmulatorError.bad_request("request body is empty; expected JSON", "INVALID_JSON")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EmulatorError.bad_request(
            f"request body is not valid JSON: {exc}", "INVALID_JSON"
        ) from None


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _describe(request: web.Request) -> web.Response:
    return _json(request.app[ENGINE_KEY].describe())


async def _create(request: web.Request) -> web.Response:
    return _json(request.app[ENGINE_KEY].create(await _body(request)))


async def _info(request: web.Request) -> web.Response:
    return _json(request.app[ENGINE_KEY].get_info(request.match_info["batch_id"]))


async def _status(request: web.Request) -> web.Response:
    return _json(request.app[ENGINE_KEY].get_status(request.match_info["batch_id"], _now()))


async def _push(request: web.Request) -> web.Response:
    arrived = _now()
    engine = request.app[ENGINE_KEY]
    batch_id = request.match_info["batch_id"]
    engine.batch(batch_id)  # 404 before spending time on the body
    chunks = parse_push_body(await _body(request))
    return _json(engine.push(batch_id, chunks, arrived))


async def _pull(request: web.Request) -> web.Response:
    arrived = _now()
    raw = request.query.get("max", request.query.get("max_chunks", "100"))
    try:
        max_chunks = int(raw)
    except ValueError:
        raise EmulatorError.bad_request(f"'max' must be an integer, got {raw!r}") from None
    taken, status = request.app[ENGINE_KEY].pull(
        request.match_info["batch_id"], max_chunks, arrived
    )
    # Results were serialised once when they entered the output buffer; splice them in.
    body = b'{"data":[' + b",".join(taken) + b'],"status":' + orjson.dumps(status) + b"}"
    return web.Response(body=body, content_type="application/json")


async def _patch(request: web.Request) -> web.Response:
    return _json(
        request.app[ENGINE_KEY].patch(request.match_info["batch_id"], await _body(request))
    )


async def _token(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    if request.match_info["tenant"].lower() != engine.options.tenant.lower():
        raise EmulatorError.not_found(f"realm {request.match_info['tenant']!r} not found")
    form = await request.post()
    if form.get("grant_type") != "client_credentials":
        raise EmulatorError.bad_request(
            "grant_type must be client_credentials", "UNSUPPORTED_GRANT"
        )
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if not isinstance(client_id, str) or not isinstance(secret, str) or not client_id:
        raise EmulatorError.bad_request(
            "client_id and client_secret are required", "INVALID_CLIENT"
        )
    auth = request.app[_AUTH_KEY]
    if auth.enforced and auth.oauth_clients is None:
        # Enforcing a key or token: a token minted for anyone would open every route.
        raise EmulatorError(401, "INVALID_CLIENT", "this emulator has no OAuth clients")
    if auth.oauth_clients is not None:
        expected = auth.oauth_clients.get(client_id)
        if expected is None or not secrets.compare_digest(secret, expected):
            raise EmulatorError(401, "INVALID_CLIENT", "invalid client credentials")
    token = secrets.token_urlsafe(24)
    request.app[_TOKENS_KEY][token] = time.monotonic() + auth.token_ttl_s
    return _json(
        {
            "access_token": token,
            "expires_in": int(auth.token_ttl_s),
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email",
        }
    )


async def _health(request: web.Request) -> web.Response:
    return _json({"status": "ok", "tenant": request.app[ENGINE_KEY].options.tenant})


def _check_control(request: web.Request) -> None:
    """The control plane can wipe every batch: it needs the same credential as the API."""
    _check_auth(request, request.app[_AUTH_KEY], request.app[_TOKENS_KEY], tenant_header=False)


async def _reset(request: web.Request) -> web.Response:
    _check_control(request)
    request.app[ENGINE_KEY].reset()
    return _json({"status": "reset"})


async def _set_faults(request: web.Request) -> web.Response:
    _check_control(request)
    body = await _body(request)
    if not isinstance(body, dict):
        raise EmulatorError.bad_request("faults must be a JSON object")
    try:
        faults = Faults(**body)
        request.app[FAULTS_KEY].configure(faults)
    except (TypeError, ValueError) as exc:
        raise EmulatorError.bad_request(f"invalid faults: {exc}") from None
    return _json({"status": "ok", "active": faults.active})


def build_app(
    engine: Engine,
    *,
    auth: Auth | None = None,
    faults: FaultInjector | None = None,
    max_body_bytes: int | None = None,
    compress_min_bytes: int = 1024,
) -> web.Application:
    """The emulator's web application; the engine's lifecycle stays with the caller.

    Answers of at least `compress_min_bytes` are gzip- (or deflate-) compressed when the
    request's `Accept-Encoding` allows it; 0 turns that off.
    """
    limit = max_body_bytes or max(64 * 1024 * 1024, 2 * engine.options.input_buffer_bytes)
    app = web.Application(middlewares=[_decorate, _errors], client_max_size=limit)
    app[ENGINE_KEY] = engine
    app[_COMPRESS_KEY] = compress_min_bytes
    app[FAULTS_KEY] = faults or FaultInjector()
    app[_AUTH_KEY] = auth or Auth()
    app[_TOKENS_KEY] = {}
    api = "/{tenant}/api/v4/batch"
    r = app.router
    r.add_get("/_emulator/health", _health)
    r.add_post("/_emulator/reset", _reset)
    r.add_put("/_emulator/faults", _set_faults)
    r.add_post("/auth/realms/{tenant}/protocol/openid-connect/token", _token)
    # `batch/status` (describe) shares its prefix with `batch/{id}`: it must come first.
    r.add_get(api + "/status", _endpoint("describe", _describe))
    r.add_post(api, _endpoint("create", _create))
    r.add_get(api + "/{batch_id}", _endpoint("info", _info))
    r.add_patch(api + "/{batch_id}", _endpoint("patch", _patch))
    r.add_get(api + "/{batch_id}/status", _endpoint("status", _status))
    r.add_post(api + "/{batch_id}/chunks", _endpoint("push", _push))
    r.add_get(api + "/{batch_id}/chunkresults", _endpoint("pull", _pull))
    return app
