"""`AsyncClient`: configuration, the pooled HTTP session's lifecycle, and the API resources."""

from __future__ import annotations

import functools
import logging
from types import TracebackType
from typing import TypeVar

import aiohttp

from ._auth import auth_from_options
from ._batches import AsyncBatches
from ._compression import Compression
from ._config import BaseUrl, ClientOptions, OAuthInput
from ._constants import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_INTERVAL_S,
    DEFAULT_TIMEOUT_S,
    LOGGER_NAME,
)
from ._exceptions import SparkSdkError
from ._http import HttpClient

__all__ = ["AsyncClient"]

C = TypeVar("C", bound="AsyncClient")


def _logger(value: logging.Logger | bool | None) -> logging.Logger:
    if isinstance(value, logging.Logger):
        return value
    if value is False:
        silent = logging.Logger(f"{LOGGER_NAME}.silent")  # unregistered: touches no global logger
        silent.addHandler(logging.NullHandler())
        silent.propagate = False
        return silent
    if value is None or value is True:
        return logging.getLogger(LOGGER_NAME)
    # A level name ("debug") or a LoggerAdapter would otherwise be dropped without a word.
    raise SparkSdkError(
        "logger must be a logging.Logger, False (silence the SDK) or None (the "
        f"'{LOGGER_NAME}' logger), got {value!r}"
    )


class AsyncClient:
    """The asyncio client for the Coherent Spark Batch API.

    ```python
    url = "https://excel.uat.us.coherent.global/my-tenant"
    async with AsyncClient(url, api_key="...") as spark:
        batch = await spark.batches.create("my-folder/my-service")
    ```

    One pooled `aiohttp.ClientSession` serves every call. It is created on the first request
    (so a client can be built at import time, e.g. as a FastAPI lifespan singleton) and closed
    by `async with` or `await spark.close()`. A caller-provided `session=` is used as is and
    never closed by the client.

    Args:
        base_url: any http(s) URL whose one path segment is the tenant; falls back to
            `CSPARK_BASE_URL`, or is built from `env` + `tenant`.
        tenant, env: build `https://excel.{env}.coherent.global/{tenant}`.
        api_key, token, oauth: credentials (OAuth, then API key, then token win); fall back to
            `CSPARK_API_KEY`, `CSPARK_BEARER_TOKEN`, `CSPARK_CLIENT_ID` + `CSPARK_CLIENT_SECRET`
            or `CSPARK_OAUTH_PATH`. `'open'` sends no credential.
        timeout: seconds per attempt (None: no limit).
        max_retries: retries after the first attempt; 0 disables retries.
        retry_interval: backoff base in seconds (retry n waits up to interval * 2**n).
        compress: 'gzip' sends request bodies of 4 KiB or more gzip-compressed (pushes shrink
            5-10x as JSON). Off by default: Spark's docs describe it, but it is not yet confirmed
            against a live tenant.
        logger: a `logging.Logger`, False to silence the SDK, or None for `cspark_async`.
        session: an `aiohttp.ClientSession` to use instead of the client's own.

    Raises:
        SparkSdkError: no base URL or credential could be resolved, or an option is invalid.
    """

    def __init__(
        self,
        base_url: str | BaseUrl | None = None,
        *,
        tenant: str | None = None,
        env: str | None = None,
        api_key: str | None = None,
        token: str | None = None,
        oauth: OAuthInput | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_interval: float = DEFAULT_RETRY_INTERVAL_S,
        compress: Compression | None = None,
        logger: logging.Logger | bool | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        options = ClientOptions.from_env(
            base_url,
            tenant=tenant,
            env=env,
            api_key=api_key,
            token=token,
            oauth=oauth,
            timeout=timeout,
            max_retries=max_retries,
            retry_interval=retry_interval,
            compress=compress,
        )
        self._init(options, logger=logger, session=session)

    @classmethod
    def from_options(
        cls: type[C],
        options: ClientOptions,
        *,
        logger: logging.Logger | bool | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> C:
        """A client for already-resolved options (no environment lookup)."""
        client = cls.__new__(cls)
        client._init(options, logger=logger, session=session)
        return client

    def _init(
        self,
        options: ClientOptions,
        *,
        logger: logging.Logger | bool | None,
        session: aiohttp.ClientSession | None,
    ) -> None:
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise SparkSdkError(f"session must be an aiohttp.ClientSession, got {session!r}")
        self.options = options
        self._logger = _logger(logger)
        self._http = HttpClient(
            options, auth_from_options(options), logger=self._logger, session=session
        )

    @property
    def base_url(self) -> BaseUrl:
        return self.options.base_url

    @property
    def is_closed(self) -> bool:
        return self._http.closed

    @functools.cached_property
    def batches(self) -> AsyncBatches:
        """The Batches API (one instance per client)."""
        return AsyncBatches(
            http=self._http, base_url=self.options.base_url, logger=self._logger, close=self.close
        )

    async def close(self) -> None:
        """Close the client's own HTTP session (not a caller-provided one). Idempotent; the
        client cannot be used afterwards."""
        await self._http.close()

    aclose = close

    async def __aenter__(self: C) -> C:
        if self.is_closed:
            raise SparkSdkError("cannot reopen a closed client; create a new AsyncClient")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self.is_closed else "open"
        return (
            f"<AsyncClient {self.options.base_url.full} auth={self.options.auth_kind} "
            f"retries={self.options.max_retries} {state}>"
        )
