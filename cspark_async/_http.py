"""The HTTP layer: one pooled aiohttp session, the request headers, the single retry loop, and
the one place where aiohttp exceptions become `SparkError`s.

Every logical request gets one `x-request-id`, reused on each retry. Attempts are retried on
connection errors, timeouts, 408, 429 and 5xx (except 501), honouring `x-retry-after` /
`Retry-After`, else with exponential backoff and full jitter. A 401 under OAuth refreshes the
token once. Cancellation is never retried: `asyncio.CancelledError` is not caught here, and
aiohttp's response context releases (or closes) the connection on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import platform
import random
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Mapping
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
from ._retry import backoff_delay, parse_retry_after, should_retry
from ._version import __version__

__all__ = ["HttpClient", "RawResponse", "default_headers", "redact_headers"]

_SENSITIVE: Final = frozenset({"authorization", "x-synthetic-key", "cookie", "set-cookie"})
_PYTHON: Final = platform.python_version()


def default_headers(tenant: str) -> dict[str, str]:
    """Headers every request carries (wire-protocol.md §1.2), minus x-request-id and auth."""
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


Sleep = Callable[[float], Awaitable[None]]


class Closeable(Protocol):
    async def aclose(self) -> None: ...


# aiohttp warns (ResourceWarning) about raw bytes bodies over 1 MiB; a fresh BytesIO per
# attempt streams the same bytes without the warning.
_LARGE_BODY_BYTES: Final = 1 << 20


def _payload(body: bytes | None) -> bytes | io.BytesIO | None:
    if body is not None and len(body) > _LARGE_BODY_BYTES:
        return io.BytesIO(body)
    return body


class HttpClient:
    """Sends requests for one `AsyncClient`. Owns its session unless one was provided.

    `rng`, `sleep` and `clock` are injectable so retry schedules can be tested exactly.
    """

    def __init__(
        self,
        options: ClientOptions,
        auth: AuthScheme,
        *,
        logger: logging.Logger,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.auth = auth
        self.logger = logger
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.clock = clock
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._streams: weakref.WeakSet[Closeable] = weakref.WeakSet()
        self._headers = default_headers(options.base_url.tenant)
        self._timeout = aiohttp.ClientTimeout(total=options.timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session in use, or None before the first request (it is created lazily)."""
        return self._session

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise SparkSdkError("the client is closed; create a new AsyncClient")
        if self._session is None:
            # Created on first use, inside the running loop: constructing a client at import
            # time (e.g. a FastAPI module-level singleton) needs no loop.
            self._session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=False)
        if self._session.closed:
            raise SparkSdkError("the aiohttp session given to the client has been closed")
        return self._session

    def track(self, stream: Closeable) -> None:
        """Remember a running stream, so that `close()` can end it first."""
        self._streams.add(stream)

    def untrack(self, stream: Closeable) -> None:
        self._streams.discard(stream)

    async def close(self) -> None:
        """End running streams, then close the session if this client created it. Idempotent."""
        if self._closed:
            return
        try:
            # A stream left by `break` is finalised later, in its own task; end it now, while
            # the session can still tell the server (its `on_exit`). Its own errors are logged
            # by it; none may keep the session open.
            for stream in list(self._streams):
                with contextlib.suppress(Exception):
                    await stream.aclose()
        finally:
            await self._close_session()

    async def _close_session(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
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
    ) -> RawResponse:
        """Send one logical request (with retries); return a success response (2xx).

        `max_retries` overrides the client's setting for this call (0: a single attempt, for
        callers that run their own retry policy).

        Raises:
            SparkSdkError: the client is closed.
            SparkConnectionError / SparkTimeoutError: no answer after every attempt.
            SparkApiError: an error status (after retries, for retryable ones).
        """
        session = self._get_session()
        request_id = str(uuid.uuid4())
        headers = {**self._headers, "x-request-id": request_id}
        if body is not None:
            headers["Content-Type"] = content_type
            body, encoding = compress_body(body, self.options.compress)
            if encoding is not None:
                headers["Content-Encoding"] = encoding
        shown_url = f"{url}?{urlencode(params)}" if params else url
        if max_retries is None:
            max_retries = self.options.max_retries
        retries = 0  # transient failures retried so far (bounded by max_retries)
        attempt = 0  # requests sent, including the one re-sent after a token refresh
        refreshed = False
        while True:
            attempt += 1
            sent = dict(headers)
            if authenticate:
                sent.update(await self.auth.headers(self._post_form))
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug(
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
                if method == "POST" and _maybe_applied(exc):
                    # A create or push whose answer was lost may have been applied: sending it
                    # again could create a second batch or run the chunk twice.
                    raise SparkConnectionError(
                        f"{exc.message}; not retried: the server may have applied it",
                        method=exc.method,
                        url=exc.url,
                        request_id=exc.request_id,
                        attempts=exc.attempts,
                    ) from exc
                delay = backoff_delay(retries, interval=self.options.retry_interval, rng=self.rng)
                self._log_retry(
                    method, shown_url, delay, type(exc).__name__, retries, max_retries, request_id
                )
                await self.sleep(delay)
                retries += 1
                continue
            status = response.status
            if 200 <= status < 300:
                return response
            if status == 401 and authenticate and not refreshed:
                refreshed = True
                if await self.auth.refresh(self._post_form, sent):
                    self.logger.debug("%s %s got 401; retrying with a new token", method, shown_url)
                    continue
            retry_after = parse_retry_after(response.headers, now=self.clock())
            if (
                should_retry(status)
                and retries < max_retries
                and not _maybe_applied_status(method, status)
            ):
                delay = (
                    retry_after
                    if retry_after is not None
                    else backoff_delay(retries, interval=self.options.retry_interval, rng=self.rng)
                )
                self._log_retry(
                    method, shown_url, delay, f"HTTP {status}", retries, max_retries, request_id
                )
                await self.sleep(delay)
                retries += 1
                continue
            raise make_status_error(
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
                f"{method} {shown_url} timed out after {self.options.timeout}s "
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
        self.logger.debug(
            "%s %s -> %d in %.1f ms",
            method,
            shown_url,
            response.status,
            (time.perf_counter() - started) * 1000,
        )
        return response

    def _log_retry(
        self,
        method: str,
        url: str,
        delay: float,
        reason: str,
        retries: int,
        max_retries: int,
        request_id: str,
    ) -> None:
        self.logger.debug(
            "retrying %s %s in %.3fs after %s (retry %d of %d, request_id=%s)",
            method,
            url,
            delay,
            reason,
            retries + 1,
            max_retries,
            request_id,
        )


def _maybe_applied_status(method: str, status: int) -> bool:
    """A POST answered 500, 502 or 504 may have been applied (a gateway gave up waiting for a
    service that did the work): sending it again could create a second batch or run a chunk
    twice, so it is not retried."""
    return method == "POST" and status in (500, 502, 504)


def _maybe_applied(exc: SparkConnectionError) -> bool:
    """False only when the request never reached the server (the connection was refused)."""
    return not isinstance(exc.__cause__, aiohttp.ClientConnectorError)
