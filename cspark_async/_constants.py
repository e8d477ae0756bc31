"""Defaults, limits and environment variable names. No logic lives here."""

from __future__ import annotations

from typing import Final

__all__ = [
    "API_VERSION",
    "COHERENT_DOMAIN",
    "DEFAULT_CALL_PURPOSE",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_PULL_MAX_CHUNKS",
    "DEFAULT_RETRY_INTERVAL_S",
    "DEFAULT_SOURCE_SYSTEM",
    "DEFAULT_STALL_TIMEOUT_S",
    "DEFAULT_TIMEOUT_S",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_BEARER_TOKEN",
    "ENV_CLIENT_ID",
    "ENV_CLIENT_SECRET",
    "ENV_OAUTH_PATH",
    "KNOWN_SERVICE_LABELS",
    "LOGGER_NAME",
    "MAX_RETRY_AFTER_S",
    "MAX_RETRY_DELAY_S",
    "MIN_RETRY_AFTER_S",
    "OPEN_AUTH",
    "SDK_NAME",
    "TOKEN_REFRESH_MARGIN_S",
]

SDK_NAME: Final = "cspark-async"
LOGGER_NAME: Final = "cspark_async"
API_VERSION: Final = "api/v4"

# Environment variables: the same names as the official SDKs read.
ENV_BASE_URL: Final = "CSPARK_BASE_URL"
ENV_API_KEY: Final = "CSPARK_API_KEY"
ENV_BEARER_TOKEN: Final = "CSPARK_BEARER_TOKEN"
ENV_CLIENT_ID: Final = "CSPARK_CLIENT_ID"
ENV_CLIENT_SECRET: Final = "CSPARK_CLIENT_SECRET"
ENV_OAUTH_PATH: Final = "CSPARK_OAUTH_PATH"

# An api_key or token of "open" means "send no credential" (public APIs).
OPEN_AUTH: Final = "open"

# Hosts `https://{label}.{env}.coherent.global`: labels Spark serves; anything else means excel.
COHERENT_DOMAIN: Final = "coherent.global"
KNOWN_SERVICE_LABELS: Final = frozenset({"excel", "keycloak", "utility", "entitystore", "mcp"})

DEFAULT_TIMEOUT_S: Final = 60.0  # per attempt
DEFAULT_MAX_RETRIES: Final = 2  # attempts = 1 + max_retries
DEFAULT_RETRY_INTERVAL_S: Final = 1.0  # backoff base: attempt n waits U(0, interval * 2**n)
MAX_RETRY_DELAY_S: Final = 20.0  # ceiling of a computed backoff
MAX_RETRY_AFTER_S: Final = 60.0  # ceiling of a server's Retry-After / x-retry-after
MIN_RETRY_AFTER_S: Final = 0.1  # floor of it: "Retry-After: 0" must not become a tight loop
DEFAULT_STALL_TIMEOUT_S: Final = 600.0  # a stream that gets no result for this long fails
TOKEN_REFRESH_MARGIN_S: Final = 60.0  # refresh an OAuth token this long before it expires

DEFAULT_CHUNK_SIZE: Final = 200
DEFAULT_PULL_MAX_CHUNKS: Final = 100
DEFAULT_CALL_PURPOSE: Final = "Async Batch Execution"
DEFAULT_SOURCE_SYSTEM: Final = "Spark Python SDK"  # the default documented for create()
