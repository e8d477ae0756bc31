"""The emulator's own words for HTTP statuses: the error codes and reason phrases it sends.

aiohttp names a status from the standard library's `http.HTTPStatus` phrases, and Python 3.13
renamed several of them after RFC 9110 (413 "Request Entity Too Large" became "Content Too
Large"). An emulator whose answers change with the interpreter that runs it would break its
users' tests on upgrade, so the text is fixed here, once, for every supported Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["ERROR_CODES", "REASON_PHRASES", "error_code", "reason_phrase"]

# The code of an error that aiohttp's router or body reader raises before a handler runs.
# These are the only statuses it raises into the error middleware (unknown path, wrong method,
# body over the size limit); errors of the emulator's own carry their code with them.
ERROR_CODES: Final[Mapping[int, str]] = MappingProxyType(
    {
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        413: "REQUEST_ENTITY_TOO_LARGE",
    }
)

# Status-line phrases for every status the emulator answers with (RFC 7231 wording, which is
# what Python 3.10 to 3.12 send; injected faults are 5xx, none of which were renamed).
REASON_PHRASES: Final[Mapping[int, str]] = MappingProxyType(
    {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        409: "Conflict",
        413: "Request Entity Too Large",
        429: "Too Many Requests",
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }
)


def error_code(status: int) -> str:
    """The UPPER_SNAKE code for an error status; `HTTP_<status>` for one not in the table."""
    return ERROR_CODES.get(status, f"HTTP_{status}")


def reason_phrase(status: int) -> str | None:
    """The status line's phrase, or None to leave an unlisted status to aiohttp's default."""
    return REASON_PHRASES.get(status)
