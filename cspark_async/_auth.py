"""Authentication schemes: what credential header each request carries, and OAuth2 tokens.

- API key: `x-synthetic-key`.  Bearer token: `Authorization: Bearer <token>`.
- OAuth2 client credentials: the token is fetched before the first call (never `Bearer None`),
  cached, refreshed shortly before it expires, and refreshed once when a call answers 401.
- `'open'`: no credential header at all.
"""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from ._config import ClientOptions, OAuthCredentials
from ._constants import TOKEN_REFRESH_MARGIN_S
from ._exceptions import InvalidResponseError

__all__ = [
    "ApiKeyAuth",
    "AuthScheme",
    "BearerAuth",
    "NoAuth",
    "OAuth2Auth",
    "TokenPoster",
    "auth_from_options",
]


class TokenPoster(Protocol):
    """Posts a form without credentials and returns the decoded JSON body (the `_http` layer)."""

    def __call__(self, url: str, form: Mapping[str, str]) -> Awaitable[Any]: ...


class AuthScheme:
    """Base scheme: no credential."""

    async def headers(self, post: TokenPoster) -> Mapping[str, str]:
        """The credential headers for the next attempt."""
        return {}

    async def refresh(self, post: TokenPoster, sent: Mapping[str, str]) -> bool:
        """After a 401 for a request that carried `sent`: True if a retry may now succeed."""
        return False

    def secrets(self) -> tuple[str, ...]:
        """Values to scrub from any text an error or log line shows."""
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NoAuth(AuthScheme):
    """`'open'`: nothing is sent."""


class ApiKeyAuth(AuthScheme):
    def __init__(self, api_key: str) -> None:
        self._header = {"x-synthetic-key": api_key}

    async def headers(self, post: TokenPoster) -> Mapping[str, str]:
        return self._header

    def secrets(self) -> tuple[str, ...]:
        return (self._header["x-synthetic-key"],)


class BearerAuth(AuthScheme):
    def __init__(self, token: str) -> None:
        self._header = {"Authorization": f"Bearer {token}"}
        self._token = token

    async def headers(self, post: TokenPoster) -> Mapping[str, str]:
        return self._header

    def secrets(self) -> tuple[str, ...]:
        return (self._token,)


class OAuth2Auth(AuthScheme):
    """Client-credentials grant against Keycloak's token endpoint, with a cached token."""

    def __init__(
        self,
        credentials: OAuthCredentials,
        token_url: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        margin_s: float = TOKEN_REFRESH_MARGIN_S,
    ) -> None:
        self.credentials = credentials
        self.token_url = token_url
        self.clock = clock
        self._margin_s = margin_s
        self._token: str | None = None
        self._refresh_at = -math.inf
        self._lock = asyncio.Lock()
        self.fetches = 0  # tokens obtained so far; handy in tests and diagnostics

    @property
    def token(self) -> str | None:
        return self._token

    async def headers(self, post: TokenPoster) -> Mapping[str, str]:
        if self._token is None or self.clock() >= self._refresh_at:
            async with self._lock:  # concurrent first calls fetch one token, not one each
                if self._token is None or self.clock() >= self._refresh_at:
                    await self._fetch(post)
        return {"Authorization": f"Bearer {self._token}"}

    async def refresh(self, post: TokenPoster, sent: Mapping[str, str]) -> bool:
        async with self._lock:
            # Another task may have refreshed while this request was in flight.
            if sent.get("Authorization") == f"Bearer {self._token}":
                self._token = None
                await self._fetch(post)
        return True

    async def _fetch(self, post: TokenPoster) -> None:
        doc = await post(
            self.token_url,
            {
                "grant_type": "client_credentials",
                "client_id": self.credentials.client_id,
                "client_secret": self.credentials.client_secret,
            },
        )
        token = doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise InvalidResponseError(
                status=200,
                method="POST",
                url=self.token_url,
                error_message="the OAuth2 token response has no access_token",
            )
        expires_in = doc.get("expires_in")
        now = self.clock()
        valid = isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool)
        if valid and expires_in > 0:
            self._refresh_at = now + expires_in - min(self._margin_s, expires_in * 0.1)
        else:
            self._refresh_at = math.inf  # no expiry given: rely on a 401 to refresh
        self._token = token
        self.fetches += 1

    def secrets(self) -> tuple[str, ...]:
        creds = self.credentials
        # The pair as an HTTP Basic header would carry it, should a server echo one back.
        basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
        return tuple(s for s in (creds.client_secret, basic, self._token) if s)

    def __repr__(self) -> str:
        return f"OAuth2Auth(client_id={self.credentials.client_id!r}, token_url={self.token_url!r})"


def auth_from_options(options: ClientOptions) -> AuthScheme:
    """The scheme the options select (OAuth, then API key, then token; else none)."""
    kind = options.auth_kind
    if kind == "oauth" and options.oauth is not None:
        return OAuth2Auth(options.oauth, options.base_url.oauth_token_url)
    if kind == "api_key" and options.api_key is not None:
        return ApiKeyAuth(options.api_key)
    if kind == "token" and options.token is not None:
        return BearerAuth(options.token)
    return NoAuth()
