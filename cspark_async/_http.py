"""The HTTP layer: one pooled aiohttp session, the request headers, the single retry loop, and
the one place where aiohttp exceptions become `SparkError`s.

Every logical request gets one `x-request-id`, reused on each retry. The client's `RetryPolicy`
decides how often and how long to wait: attempts are retried on connection errors, timeouts,
408, 429 and 5xx (except 501), honouring `x-retry-after` / `Retry-After` (floored, so a zero
cannot make a tight loop), else with exponential backoff and full jitter. A POST (create, push)
is retried only when the server surely did not apply it. A 401 under OAuth refreshes the
token once. Cancellation is never retried: `asyncio.CancelledError` is not caught here, and
aiohttp's response context releases (or closes) the connection on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import platform
import time
import uuid
import weakref
from collections.abc import Coroutine, Mapping
from typing import Any, Final, Protocol
from urllib.parse import urlencode

import aiohttp
import orjson
from attrs import field, frozen

from ._auth import AuthScheme
from ._compression import compress_body
from ._config import ClientOptions
from ._constants import SDK_NAME
from ._exceptions import (
    InvalidResponseError,
    SparkConnectionError,
    SparkSdkError,
    SparkTimeoutError,
    body_excerpt,
    make_status_error,
    redact,
)
from ._otel import record_retry
from ._policy import RetryPolicy
from ._retry import NOT_APPLIED_STATUSES, should_retry
from ._version import __version__

__all__ = ["HttpClient", "RawResponse", "default_headers", "redact_headers"]

_SENSITIVE: Final = frozenset({"authorization", "x-synthetic-key", "cookie", "set-cookie"})
_PYTHON: Final = platform.python_version()


def default_headers(tenant: str) -> dict[str, str]:
    """Headers every request carries (as the official SDKs send them), minus x-request-id and
    the credential."""
    return {
        "x-tenant-name": tenant,
        "x-spark-ua": f"agent={SDK_NAME}/{__version__}; env=Python/{_PYTHON}",
        "User-Agent": (
            f"Coherent Spark SDK v{__version__} ({SDK_NAME}; Python/{_PYTHON}; {platform.system()})"
        ),
        "Accept": "application/json",
    }


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy safe to log: credential headers masked."""
    return {k: ("****" if k.lower() in _SENSITIVE else v) for k, v in headers.items()}


@frozen
class RawResponse:
    """One HTTP answer, fully read, with the client's `secrets` to scrub from any error built
    from it."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    method: str
    url: str
    request_id: str
    attempts: int = 1
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def body_text(self) -> str:
        """The body as text for an error's `.body`: secrets masked, at most 2000 characters."""
        return body_excerpt(self.body, self.secrets)

    def json(self) -> Any:
        """The body decoded as JSON.

        Raises:
            InvalidResponseError: the body is empty, truncated, HTML or otherwise not JSON.
        """
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            kind = self.headers.get("Content-Type", "no content type")
            what = "an empty body" if not self.body else f"a body that is not JSON ({kind})"
            raise self.invalid(f"expected JSON, got {what}") from None

    def invalid(self, message: str) -> InvalidResponseError:
        """The error for a success status whose body is not what was documented."""
        return InvalidResponseError(
            status=self.status,
            method=self.method,
            url=self.url,
            request_id=self.request_id,
            body=self.body_text(),
            headers=self.headers,
            error_message=message,
            attempts=self.attempts,
        )


class Closeable(Protocol):
    async def aclose(self) -> None: ...


# aiohttp warns (ResourceWarning) about raw bytes bodies over 1 MiB; a fresh BytesIO per
# attempt streams the same bytes without the warning.
_LARGE_BODY_BYTES: Final = 1 << 20
# How long `close()` waits for clean-ups that cancelled callers left running.
_CLEANUP_WAIT_S: Final = 15.0


def _payload(body: bytes | None) -> bytes | io.BytesIO | None:
    if body is not None and len(body) > _LARGE_BODY_BYTES:
        return io.BytesIO(body)
    return body


class _Pool:
    """What every client derived by `with_options()` shares: the session, its owner, the
    running streams and the clean-ups left running by cancelled callers."""

    def __init__(self, session: aiohttp.ClientSession | None) -> None:
        self.session = session
        self.owns_session = session is None
        self.closed = False
        self.streams: weakref.WeakSet[Closeable] = weakref.WeakSet()
        self.cleanups: set[asyncio.Task[None]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None  # where our own session lives


class HttpClient:
    """Sends requests for one `AsyncClient` under its `RetryPolicy`. Owns its session unless
    one was provided; `derive()` makes a twin with another policy on the same session."""

    def __init__(
        self,
        options: ClientOptions,
        auth: AuthScheme,
        *,
        policy: RetryPolicy,
        session: aiohttp.ClientSession | None = None,
        pool: _Pool | None = None,
    ) -> None:
        self.options = options
        self.auth = auth
        self.policy = policy
        self._pool = pool if pool is not None else _Pool(session)
        self._headers = default_headers(options.base_url.tenant)
        self._timeout = aiohttp.ClientTimeout(total=policy.timeout)

    def derive(self, policy: RetryPolicy) -> HttpClient:
        """A client on the same session, credentials and token cache, under `policy`."""
        return HttpClient(self.options, self.auth, policy=policy, pool=self._pool)

    @property
    def logger(self) -> logging.Logger:
        return self.policy.logger

    @property
    def closed(self) -> bool:
        return self._pool.closed

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session in use, or None before the first request (it is created lazily)."""
        return self._pool.session

    def _get_session(self) -> aiohttp.ClientSession:
        pool = self._pool
        if pool.closed:
            raise SparkSdkError("the client is closed; create a new AsyncClient")
        loop = asyncio.get_running_loop()
        if pool.session is None:
            # Created on first use, inside the running loop: constructing a client at import
            # time (e.g. a FastAPI module-level singleton) needs no loop.
            pool.session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=False)
            pool.loop = loop
        elif pool.loop is not None and pool.loop is not loop:
            # Connections cannot move between loops; aiohttp would fail obscurely (a closed
            # loop's RuntimeError) or, with both loops alive, corrupt the pool.
            state = "since closed" if pool.loop.is_closed() else "still open"
            raise SparkSdkError(
                f"this AsyncClient's connections belong to another event loop ({state}); "
                "create the client in the loop that uses it (one per asyncio.run() or per "
                "test, or in your app's lifespan) and close it there with `async with`"
            )
        if pool.session.closed:
            raise SparkSdkError("the aiohttp session given to the client has been closed")
        return pool.session

    def track(self, stream: Closeable) -> None:
        """Remember a running stream, so that `close()` can end it first."""
        self._pool.streams.add(stream)

    def untrack(self, stream: Closeable) -> None:
        self._pool.streams.discard(stream)

    def finish_later(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run a clean-up its cancelled caller cannot wait for (e.g. telling the server to
        cancel a batch); `close()` waits for it, so nothing outlives the client."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._pool.cleanups.add(task)
        task.add_done_callback(self._pool.cleanups.discard)

    async def close(self) -> None:
        """End running streams and pending clean-ups, then close the session if this client
        created it. Idempotent."""
        pool = self._pool
        if pool.closed:
            return
        try:
            # A stream left by `break` is finalised later, in its own task; end it now, while
            # the session can still tell the server (its `on_exit`). Its own errors are logged
            # by it; none may keep the session open.
            for stream in list(pool.streams):
                with contextlib.suppress(Exception):
                    await stream.aclose()
            if pool.cleanups:
                await asyncio.wait(list(pool.cleanups), timeout=_CLEANUP_WAIT_S)
            for task in list(pool.cleanups):
                task.cancel()  # a clean-up still hanging on a dead server
        finally:
            await self._close_session()

    async def _close_session(self) -> None:
        pool = self._pool
        pool.closed = True
        session, pool.session = pool.session, None
        if session is not None and pool.owns_session:
            await session.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        content_type: str = "application/json",
        params: Mapping[str, str | int] | None = None,
        authenticate: bool = True,
        max_retries: int | None = None,
        repeatable: bool | None = None,
    ) -> RawResponse:
        """Send one logical request (with retries); return a success response (2xx).

        `max_retries` overrides the policy for this call (0: a single attempt, for callers that
        run their own retry policy). `repeatable` says whether sending the request twice is
        harmless (default: every method but POST). A request that is not repeatable is retried
        only when the server surely did not apply it: a refused connection, 408, 429 or 503.

        Raises:
            SparkSdkError: the client is closed.
            SparkConnectionError / SparkTimeoutError: no answer after every attempt.
            SparkApiError: an error status (after retries, for retryable ones).
        """
        session = self._get_session()
        policy = self.policy
        logger = policy.logger
        request_id = str(uuid.uuid4())
        headers = {**self._headers, "x-request-id": request_id}
        if body is not None:
            headers["Content-Type"] = content_type
            body, encoding = compress_body(body, self.options.compress)
            if encoding is not None:
                headers["Content-Encoding"] = encoding
        shown_url = f"{url}?{urlencode(params)}" if params else url
        if max_retries is None:
            max_retries = policy.max_retries
        if repeatable is None:
            repeatable = method != "POST"
        retries = 0  # transient failures retried so far (bounded by max_retries)
        attempt = 0  # requests sent, including the one re-sent after a token refresh
        refreshed = False
        while True:
            attempt += 1
            sent = dict(headers)
            if authenticate:
                sent.update(await self.auth.headers(self._post_form))
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s %s attempt %d (retry %d of %d) headers=%s",
                    method,
                    shown_url,
                    attempt,
                    retries,
                    max_retries,
                    redact_headers(sent),
                )
            try:
                response = await self._send(
                    session, method, url, shown_url, params, sent, body, request_id, attempt
                )
            except SparkConnectionError as exc:
                if retries >= max_retries:
                    raise
                if not repeatable and _maybe_applied(exc):
                    # A create or push whose answer was lost may have been applied: sending it
                    # again could create a second batch or run the chunk twice.
                    raise SparkConnectionError(
                        f"{exc.message}; not retried: the server may have applied it",
                        method=exc.method,
                        url=exc.url,
                        request_id=exc.request_id,
                        attempts=exc.attempts,
                    ) from exc
                delay = policy.backoff(retries)
                self._log_retry(method, shown_url, delay, type(exc).__name__, retries, max_retries)
                await policy.sleep(delay)
                retries += 1
                continue
            status = response.status
            if 200 <= status < 300:
                return response
            if status == 401 and authenticate and not refreshed:
                refreshed = True
                if await self.auth.refresh(self._post_form, sent):
                    logger.debug("%s %s got 401; retrying with a new token", method, shown_url)
                    continue
            retry_after = policy.retry_after(response.headers)
            retryable = should_retry(status) if repeatable else status in NOT_APPLIED_STATUSES
            if retryable and retries < max_retries:
                delay = policy.delay(retries, retry_after)
                self._log_retry(method, shown_url, delay, f"HTTP {status}", retries, max_retries)
                await policy.sleep(delay)
                retries += 1
                continue
            error = make_status_error(
                status=status,
                method=method,
                url=shown_url,
                request_id=request_id,
                body=response.body,
                headers=response.headers,
                retry_after=retry_after,
                attempts=attempt,
                secrets=self.auth.secrets(),
            )
            if not repeatable and should_retry(status) and retries < max_retries:
                error.message += (
                    "; not retried: the server may have applied it before failing, so check "
                    "before sending it again"
                )
            raise error

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        max_retries: int | None = None,
    ) -> tuple[RawResponse, Any]:
        """`request()`, then the body decoded as JSON (InvalidResponseError if it is not)."""
        response = await self.request(
            method, url, body=body, params=params, max_retries=max_retries
        )
        return response, response.json()

    async def _post_form(self, url: str, form: Mapping[str, str]) -> Any:
        response = await self.request(
            "POST",
            url,
            body=urlencode(form).encode(),
            content_type="application/x-www-form-urlencoded",
            authenticate=False,
            repeatable=True,  # asking for a token twice is harmless
        )
        return response.json()

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        shown_url: str,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str],
        body: bytes | None,
        request_id: str,
        attempt: int,
    ) -> RawResponse:
        """One attempt. The only place aiohttp exceptions are caught and translated."""
        started = time.perf_counter()
        try:
            async with session.request(
                method,
                url,
                params=params,
                data=_payload(body),
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,  # a redirect is reported, never silently followed
            ) as resp:
                content = await resp.read()
                response = RawResponse(
                    status=resp.status,
                    headers=resp.headers,
                    body=content,
                    method=method,
                    url=shown_url,
                    request_id=request_id,
                    attempts=attempt,
                    secrets=self.auth.secrets(),
                )
        except asyncio.TimeoutError:
            raise SparkTimeoutError(
                f"{method} {shown_url} timed out after {self.policy.timeout}s "
                f"(attempt {attempt}, request_id={request_id})",
                method=method,
                url=shown_url,
                request_id=request_id,
                attempts=attempt,
            ) from None
        except aiohttp.ClientError as exc:
            detail = redact(str(exc), self.auth.secrets()) or type(exc).__name__
            raise SparkConnectionError(
                f"{method} {shown_url} failed: {type(exc).__name__}: {detail} "
                f"(attempt {attempt}, request_id={request_id})",
                method=method,
                url=shown_url,
                request_id=request_id,
                attempts=attempt,
            ) from exc
        self.policy.logger.debug(
            "%s %s -> %d in %.1f ms",
            method,
            shown_url,
            response.status,
            (time.perf_counter() - started) * 1000,
        )
        return response

    def _log_retry(
        self, method: str, url: str, delay: float, reason: str, retries: int, max_retries: int
    ) -> None:
        record_retry(reason.removeprefix("HTTP "), attempt=retries + 1, delay_s=delay)
        self.policy.logger.debug(
            "retrying %s %s in %.3fs after %s (retry %d of %d)",
            method,
            url,
            delay,
            reason,
            retries + 1,
            max_retries,
        )


def _maybe_applied(exc: SparkConnectionError) -> bool:
    """False only when the request never reached the server (the connection was refused)."""
    return not isinstance(exc.__cause__, aiohttp.ClientConnectorError)
