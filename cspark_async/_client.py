"""`AsyncClient`: configuration, the pooled HTTP session's lifecycle, and the API resources."""

from __future__ import annotations

import functools
import logging
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import attrs

from ._auth import auth_from_options
from ._batches import AsyncBatches
from ._compression import Compression
from ._config import BaseUrl, ClientOptions, OAuthInput
from ._constants import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_INTERVAL_S,
    DEFAULT_TIMEOUT_S,
)
from ._exceptions import SparkSdkError
from ._http import HttpClient
from ._policy import RetryPolicy, make_logger

__all__ = ["AsyncClient"]

C = TypeVar("C", bound="AsyncClient")


class _Unset:
    """The default of `with_options()` arguments: "keep the current value" (None is a value)."""


_UNSET: Any = _Unset()


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

    The same retry policy (retries, backoff, timeout, logger) governs plain calls and streams;
    `with_options()` derives a client with other settings on the same session.

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
        policy = RetryPolicy.from_options(options, make_logger(logger))
        self._http = HttpClient(options, auth_from_options(options), policy=policy, session=session)

    @property
    def policy(self) -> RetryPolicy:
        """Retries, backoff, timeouts and logging, for plain calls and streams alike."""
        return self._http.policy

    def with_options(
        self: C,
        *,
        timeout: float | _Unset | None = _UNSET,
        max_retries: int | _Unset = _UNSET,
        retry_interval: float | _Unset = _UNSET,
        stall_timeout: float | _Unset = _UNSET,
        logger: logging.Logger | bool | _Unset | None = _UNSET,
        policy: RetryPolicy | _Unset = _UNSET,
    ) -> C:
        """A copy with other settings that shares this client's session and token cache.

        ```python
        patient = spark.with_options(timeout=300, max_retries=5)
        await patient.batches.create("my-folder/my-service")
        ```
        Closing either closes the shared session. `policy=` replaces the whole policy (e.g.
        one with a fake clock in tests); the other arguments change one setting of it.
        """
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("timeout", timeout),
                ("max_retries", max_retries),
                ("retry_interval", retry_interval),
                ("stall_timeout", stall_timeout),
            )
            if not isinstance(value, _Unset)
        }
        if not isinstance(logger, _Unset):
            changes["logger"] = make_logger(logger)
        base = self.policy if isinstance(policy, _Unset) else policy
        if not isinstance(base, RetryPolicy):
            raise SparkSdkError(f"policy must be a RetryPolicy, got {type(base).__name__}")
        new_policy = attrs.evolve(base, **changes)
        options = attrs.evolve(
            self.options,
            timeout=new_policy.timeout,
            max_retries=new_policy.max_retries,
            retry_interval=new_policy.retry_interval,
        )
        client = type(self).__new__(type(self))
        client.options = options
        client._http = self._http.derive(new_policy)
        return client

    @property
    def base_url(self) -> BaseUrl:
        return self.options.base_url

    @property
    def is_closed(self) -> bool:
        return self._http.closed

    @functools.cached_property
    def batches(self) -> AsyncBatches:
        """The Batches API (one instance per client)."""
        return AsyncBatches(http=self._http, base_url=self.options.base_url, close=self.close)

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
            f"retries={self.policy.max_retries} {state}>"
        )
