"""Client configuration: the base URL and tenant, credentials, timeouts and retries.

`ClientOptions.from_env()` is the one place that reads the environment; explicit arguments
always beat environment variables. Secrets never appear in a repr or str.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import quote

import orjson
from attrs import field, frozen
from yarl import URL

from ._compression import Compression, check_compress
from ._constants import (
    API_VERSION,
    COHERENT_DOMAIN,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_INTERVAL_S,
    DEFAULT_TIMEOUT_S,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_BEARER_TOKEN,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_OAUTH_PATH,
    KNOWN_SERVICE_LABELS,
    OPEN_AUTH,
)
from ._exceptions import SparkSdkError
from ._policy import check_retries, seconds

__all__ = ["BaseUrl", "ClientOptions", "OAuthCredentials", "OAuthInput", "mask", "positive_number"]

_MASKED = "'****'"
# The word "bearer" then whitespace (or nothing): a token that merely starts with the word
# ("bearer-7f3a", "Bearer.7f3a") is the token itself.
_BEARER_PREFIX = re.compile(r"^\s*bearer(?:\s+|$)", re.IGNORECASE)


def mask(value: object) -> str:
    """repr of a secret: whether it is set, never what it is."""
    if value is None:
        return "None"
    return repr(value) if value == OPEN_AUTH else _MASKED


@frozen
class OAuthCredentials:
    """OAuth2 client credentials (client-credentials grant)."""

    client_id: str
    client_secret: str = field(repr=mask)

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> OAuthCredentials:
        """Accepts `{client_id, client_secret}` and the TS SDK's `{clientId, clientSecret}`."""
        client_id = value.get("client_id", value.get("clientId"))
        secret = value.get("client_secret", value.get("clientSecret"))
        if not (isinstance(client_id, str) and client_id and isinstance(secret, str) and secret):
            raise SparkSdkError("OAuth credentials need non-empty 'client_id' and 'client_secret'")
        return cls(client_id, secret)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> OAuthCredentials:
        """Reads a JSON file holding `{client_id, client_secret}`."""
        try:
            doc = orjson.loads(Path(path).read_bytes())
        except OSError as exc:
            raise SparkSdkError(f"cannot read the OAuth file {os.fspath(path)!r}: {exc}") from None
        except orjson.JSONDecodeError:
            raise SparkSdkError(f"the OAuth file {os.fspath(path)!r} is not valid JSON") from None
        if not isinstance(doc, dict):
            raise SparkSdkError(f"the OAuth file {os.fspath(path)!r} must hold a JSON object")
        return cls.from_mapping(doc)


OAuthInput: TypeAlias = OAuthCredentials | Mapping[str, Any] | str | os.PathLike[str]


def _coherent_parts(host: str) -> tuple[str, str] | None:
    """(service label, env) of `{label}.{env}.coherent.global`, else None."""
    suffix = "." + COHERENT_DOMAIN
    if not host.lower().endswith(suffix):
        return None
    label, _, env = host[: -len(suffix)].partition(".")
    return (label.lower(), env.lower()) if label and env else None


@frozen
class BaseUrl:
    """Where the tenant's API lives: `origin` (`scheme://host[:port]`) plus `tenant`.

    ```python
    BaseUrl.resolve("http://127.0.0.1:8080/my-tenant")      # any http(s) URL with a tenant
    BaseUrl.resolve(env="uat.us", tenant="my-tenant")       # https://excel.uat.us.coherent.global
    ```
    """

    origin: str
    tenant: str

    @property
    def full(self) -> str:
        return f"{self.origin}/{self.tenant}"

    def api(self, *segments: str) -> str:
        """`{full}/api/v4/{segments...}`, each segment percent-encoded."""
        path = "/".join(quote(s, safe="") for s in segments)
        return f"{self.full}/{API_VERSION}/{path}" if path else f"{self.full}/{API_VERSION}"

    @property
    def oauth_token_url(self) -> str:
        """Keycloak's token endpoint: on `keycloak.{env}` for Coherent hosts, else the same host."""
        url = URL(self.origin)
        parts = _coherent_parts(url.host or "")
        if parts is not None:
            url = url.with_host(f"keycloak.{parts[1]}.{COHERENT_DOMAIN}")
        realm = quote(self.tenant, safe="")
        return f"{str(url.origin()).rstrip('/')}/auth/realms/{realm}/protocol/openid-connect/token"

    @classmethod
    def resolve(
        cls, url: str | None = None, *, tenant: str | None = None, env: str | None = None
    ) -> BaseUrl:
        """Build from a URL (its first path segment is the tenant) or from `env` + `tenant`."""
        url, env = _string("base_url", url), _string("env", env)
        tenant = _string("tenant", tenant)
        if tenant is not None:
            tenant = tenant.strip()
            _check_tenant(tenant)
        if url is None:
            if not env or not tenant:
                raise SparkSdkError(
                    "no base URL: pass base_url= (or set "
                    f"{ENV_BASE_URL}), or pass env= and tenant= to build "
                    "https://excel.{env}.coherent.global/{tenant}"
                )
            env = env.strip().lower()
            if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)*", env):
                raise SparkSdkError(f"env must look like 'uat.us' or 'prod', got {env!r}")
            return cls(f"https://excel.{env}.{COHERENT_DOMAIN}", tenant.lower())
        return cls._from_url(url.strip(), tenant)

    @classmethod
    def _from_url(cls, text: str, tenant: str | None) -> BaseUrl:
        try:
            url = URL(text)
        except (TypeError, ValueError) as exc:
            raise SparkSdkError(f"invalid base URL {text!r}: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise SparkSdkError(
                f"base URL must be an absolute http(s) URL like https://excel.uat.us.coherent.global"
                f"/my-tenant, got {text!r}"
            )
        if url.query_string or url.fragment:
            raise SparkSdkError(f"base URL must not carry a query or fragment, got {text!r}")
        segments = [s for s in url.path.split("/") if s]
        if len(segments) > 1:
            raise SparkSdkError(
                f"base URL must be '{{origin}}/{{tenant}}' (one path segment), got {text!r}"
            )
        from_url = segments[0] if segments else None
        if from_url and tenant and from_url.lower() != tenant.lower():
            raise SparkSdkError(
                f"tenant {tenant!r} conflicts with the base URL's tenant {from_url!r}"
            )
        chosen = from_url or tenant
        if not chosen:
            raise SparkSdkError(
                f"no tenant: put it in the base URL ({text.rstrip('/')}/my-tenant) or pass tenant="
            )
        _check_tenant(chosen)
        parts = _coherent_parts(url.host)
        if parts is not None:
            label, env = parts
            label = label if label in KNOWN_SERVICE_LABELS else "excel"
            url = url.with_host(f"{label}.{env}.{COHERENT_DOMAIN}")
        return cls(str(url.origin()).rstrip("/"), chosen)


def _check_tenant(tenant: str) -> None:
    if not tenant or re.search(r"[\s/?#]", tenant):
        raise SparkSdkError(f"tenant must be a non-empty name without '/', got {tenant!r}")


def positive_number(name: str, value: float | None, unit: str) -> float | None:
    """`value` as a float, None staying None; SparkSdkError unless a positive finite number."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value > 0)
    ):
        raise SparkSdkError(f"{name} must be a positive number of {unit}, got {value!r}")
    return float(value)


def _check_header_value(_inst: object, attr: Any, value: str | None) -> None:
    # A CR or LF would split the header (request smuggling); aiohttp refuses it only when
    # the request is sent. The value is a secret: the message names the field, not the value.
    if value is not None and re.search(r"[\x00-\x1f\x7f]", value):
        raise SparkSdkError(
            f"{attr.name} contains a control character (CR, LF...): it cannot be sent in a header"
        )


def _string(name: str, value: object) -> str | None:
    """`value` if it is a string or None; a named error otherwise (not an AttributeError)."""
    if value is None or isinstance(value, str):
        return value
    raise SparkSdkError(f"{name} must be a string, got {type(value).__name__}")


def _blank_to_none(name: str, value: object) -> str | None:
    text = _string(name, value)
    return (text.strip() or None) if text is not None else None


@frozen(kw_only=True)
class ClientOptions:
    """Everything an `AsyncClient` needs, resolved and validated. Immutable; use
    `attrs.evolve(options, timeout=5.0)` for a changed copy.

    Credential precedence (as in the official SDK): OAuth, then API key, then bearer token.
    The value `'open'` for `api_key` or `token` sends no credential at all.
    """

    base_url: BaseUrl
    api_key: str | None = field(default=None, repr=mask, validator=_check_header_value)
    token: str | None = field(default=None, repr=mask, validator=_check_header_value)
    oauth: OAuthCredentials | None = None
    timeout: float | None = field(
        default=DEFAULT_TIMEOUT_S, validator=seconds("timeout", allow_none=True)
    )
    max_retries: int = field(default=DEFAULT_MAX_RETRIES, validator=check_retries)
    retry_interval: float = field(
        default=DEFAULT_RETRY_INTERVAL_S, validator=seconds("retry_interval", allow_zero=True)
    )
    compress: Compression | None = field(default=None, validator=check_compress)

    @property
    def auth_kind(self) -> str:
        """'oauth', 'api_key', 'token' or 'open' (no credential sent)."""
        if self.oauth is not None:
            return "oauth"
        if self.api_key and self.api_key != OPEN_AUTH:
            return "api_key"
        if self.token and self.token != OPEN_AUTH:
            return "token"
        return "open"

    @classmethod
    def from_env(
        cls,
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
        environ: Mapping[str, str] | None = None,
    ) -> ClientOptions:
        """Resolve options from arguments, falling back to the environment.

        Environment variables: `CSPARK_BASE_URL`, `CSPARK_API_KEY`, `CSPARK_BEARER_TOKEN`,
        `CSPARK_CLIENT_ID` + `CSPARK_CLIENT_SECRET`, `CSPARK_OAUTH_PATH` (a JSON file).
        If any credential argument is given, credential variables are not read at all.

        Raises:
            SparkSdkError: no base URL, no credential, or an invalid value.
        """
        environ = os.environ if environ is None else environ
        if isinstance(base_url, BaseUrl):
            resolved = base_url
        else:
            url = _blank_to_none("base_url", base_url) or _blank_to_none(
                ENV_BASE_URL, environ.get(ENV_BASE_URL)
            )
            resolved = BaseUrl.resolve(url, tenant=tenant, env=env)

        api_key, token = _blank_to_none("api_key", api_key), _blank_to_none("token", token)
        creds = _oauth_from(oauth) if oauth is not None else None
        if api_key is None and token is None and creds is None:
            client_id = _blank_to_none(ENV_CLIENT_ID, environ.get(ENV_CLIENT_ID))
            secret = _blank_to_none(ENV_CLIENT_SECRET, environ.get(ENV_CLIENT_SECRET))
            oauth_path = _blank_to_none(ENV_OAUTH_PATH, environ.get(ENV_OAUTH_PATH))
            if client_id and secret:
                creds = OAuthCredentials(client_id, secret)
            elif oauth_path:
                creds = OAuthCredentials.from_file(oauth_path)
            api_key = _blank_to_none(ENV_API_KEY, environ.get(ENV_API_KEY))
            token = _blank_to_none(ENV_BEARER_TOKEN, environ.get(ENV_BEARER_TOKEN))
        if token is not None:
            token = _BEARER_PREFIX.sub("", token) or None
        if api_key is None and token is None and creds is None:
            raise SparkSdkError(
                "no credential: pass api_key=, token= or oauth= (or set "
                f"{ENV_API_KEY}, {ENV_BEARER_TOKEN}, {ENV_CLIENT_ID} + {ENV_CLIENT_SECRET}, or "
                f"{ENV_OAUTH_PATH}); use api_key='open' to send none"
            )
        return cls(
            base_url=resolved,
            api_key=api_key,
            token=token,
            oauth=creds,
            timeout=timeout,
            max_retries=max_retries,
            retry_interval=retry_interval,
            compress=compress,
        )


def _oauth_from(value: OAuthInput) -> OAuthCredentials:
    if isinstance(value, OAuthCredentials):
        return value
    if isinstance(value, Mapping):
        return OAuthCredentials.from_mapping(value)
    if isinstance(value, (str, os.PathLike)):
        return OAuthCredentials.from_file(value)
    raise SparkSdkError(
        "oauth must be {'client_id', 'client_secret'}, OAuthCredentials or a path to a JSON file"
    )
