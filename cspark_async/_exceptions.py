"""The SDK's one error tree. aiohttp exceptions never reach callers; `_http.py` translates them.

```
SparkError
├── SparkSdkError                  a client-side problem (bad argument, local pipeline state,
│                                  configuration, closed client); raised before anything is sent
├── SparkConnectionError           no HTTP answer: refused, reset, truncated body (after retries)
│   └── SparkTimeoutError          ... because the attempt timed out
├── SparkApiError                  the server answered, but not with the documented success;
│   │                              `.status` is always the HTTP status
│   ├── BadRequestError            400
│   ├── UnauthorizedError          401
│   ├── ForbiddenError             403
│   ├── NotFoundError              404
│   ├── RequestTimeoutError        408
│   ├── ConflictError              409
│   ├── PayloadTooLargeError       413
│   ├── UnsupportedMediaTypeError  415
│   ├── UnprocessableEntityError   422
│   ├── RateLimitError             429
│   ├── InternalServerError        500
│   ├── BadGatewayError            502
│   ├── ServiceUnavailableError    503
│   ├── GatewayTimeoutError        504
│   ├── UnknownApiError            any other status >= 300 (redirects, 405, 501...)
│   └── InvalidResponseError       a success status whose body is not the documented JSON
└── StreamError                    a stream could not deliver every record (see its fields)
```

`SparkSdkError` means "nothing was sent for that call": connection errors sit beside it, not
under it, since they may have reached the server. A stream that finds a bad record after some
records went out raises `StreamError` (with the offset and what was submitted), not
`SparkSdkError`.

Credentials never appear in any message or repr: errors hold no request headers, and every
text taken from a response is scrubbed of the client's secrets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote, quote_plus, urljoin, urlsplit, urlunsplit

import orjson

__all__ = [
    "BadGatewayError",
    "BadRequestError",
    "body_excerpt",
    "ConflictError",
    "ForbiddenError",
    "GatewayTimeoutError",
    "InternalServerError",
    "InvalidResponseError",
    "make_status_error",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "redact",
    "redact_mapping",
    "RequestTimeoutError",
    "secret_forms",
    "ServiceUnavailableError",
    "SparkApiError",
    "SparkConnectionError",
    "SparkError",
    "SparkSdkError",
    "SparkTimeoutError",
    "StreamError",
    "UnauthorizedError",
    "UnknownApiError",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
]

_MASK: Final = "****"
_EXCERPT_CHARS: Final = 200
_BODY_CHARS: Final = 2000


def secret_forms(secret: str) -> tuple[str, ...]:
    """A secret as it may be echoed back: raw, percent-encoded (a form body or a query echoed
    in an error) and JSON-escaped. Longest first, so a longer form is masked whole."""
    escaped = orjson.dumps(secret)[1:-1].decode()
    forms = {secret, quote(secret, safe=""), quote_plus(secret), escaped}
    return tuple(sorted(forms, key=len, reverse=True))


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every non-trivial secret, in any of its `secret_forms`, replaced by a mask."""
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        for form in secret_forms(secret):
            if form in text:
                text = text.replace(form, _MASK)
    return text


def redact_mapping(headers: Mapping[str, str], secrets: Iterable[str | None]) -> dict[str, str]:
    """A copy of `headers` with secrets masked in every value."""
    secrets = list(secrets)
    return {k: redact(str(v), secrets) for k, v in headers.items()}


class SparkError(Exception):
    """Base of every error this SDK raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SparkSdkError(SparkError):
    """A client-side problem, found before anything was sent."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class SparkConnectionError(SparkError):
    """The request got no HTTP answer, even after retries."""

    def __init__(
        self, message: str, *, method: str, url: str, request_id: str | None, attempts: int = 1
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.request_id = request_id
        self.attempts = attempts

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(method={self.method!r}, url={self.url!r}, "
            f"request_id={self.request_id!r}, attempts={self.attempts})"
        )


class SparkTimeoutError(SparkConnectionError):
    """An attempt exceeded the client's timeout, and retries did not help."""


class SparkApiError(SparkError):
    """The server answered with an error status or an unusable body.

    Attributes:
        status: the HTTP status, always set.
        method, url, request_id: what was sent (`request_id` is the `x-request-id` header).
        body: the response body as text (secrets scrubbed).
        headers: the response headers.
        error_code, error_message: from a JSON error body
            (`{"error": {"code", "message"}}`, or top-level `code` / `message`), else None.
        retry_after: seconds the server asked to wait (`x-retry-after` / `Retry-After`), if any.
        attempts: how many attempts were made.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int,
        method: str,
        url: str,
        request_id: str | None = None,
        body: str = "",
        headers: Mapping[str, str] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        self.status = status
        self.method = method
        self.url = url
        self.request_id = request_id
        self.body = body
        self.headers: Mapping[str, str] = dict(headers or {})
        self.error_code = error_code
        self.error_message = error_message
        self.retry_after = retry_after
        self.attempts = attempts
        super().__init__(message or self._describe())

    def _describe(self) -> str:
        text = f"{self.status} {type(self).__name__}: {self.method} {self.url} failed"
        location = self._redirect_target()
        if location is not None:
            text += f": redirected to {location}; redirects are not followed: check the base URL"
        elif self.error_code or self.error_message:
            code = f"[{self.error_code}] " if self.error_code else ""
            text += f": {code}{self.error_message or ''}".rstrip()
        elif self.body:
            excerpt = " ".join(self.body.split())
            if len(excerpt) > _EXCERPT_CHARS:
                excerpt = excerpt[:_EXCERPT_CHARS] + "..."
            text += f": {excerpt}"
        if self.attempts > 1:
            text += f" after {self.attempts} attempts"
        if self.request_id:
            text += f" (request_id={self.request_id})"
        return text

    def _redirect_target(self) -> str | None:
        """A 3xx's Location, resolved against the URL; without its query, fragment or user
        info, which may carry a sign-in state or a credential. None if not a redirect."""
        if not 300 <= self.status < 400:
            return None
        location = next((v for k, v in self.headers.items() if k.lower() == "location"), None)
        if not location:
            return None
        parts = urlsplit(urljoin(self.url, location.strip()))
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=host, query="", fragment=""))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, method={self.method!r}, "
            f"url={self.url!r}, error_code={self.error_code!r}, request_id={self.request_id!r})"
        )


class BadRequestError(SparkApiError):
    """400: the request was malformed or invalid."""


class UnauthorizedError(SparkApiError):
    """401: missing, wrong or expired credentials."""


class ForbiddenError(SparkApiError):
    """403: authenticated, but not allowed (also a tenant mismatch)."""


class NotFoundError(SparkApiError):
    """404: unknown batch, service, tenant or route."""


class RequestTimeoutError(SparkApiError):
    """408: the server gave up waiting for the request (it was not applied)."""


class ConflictError(SparkApiError):
    """409: the batch's state forbids the operation (e.g. a push to a closed batch)."""


class PayloadTooLargeError(SparkApiError):
    """413: the body is larger than the server accepts (e.g. a chunk over the input buffer)."""


class UnsupportedMediaTypeError(SparkApiError):
    """415."""


class UnprocessableEntityError(SparkApiError):
    """422."""


class RateLimitError(SparkApiError):
    """429: rate limited or input buffer full; see `retry_after`."""


class InternalServerError(SparkApiError):
    """500."""


class BadGatewayError(SparkApiError):
    """502: a proxy in front of Spark got no usable answer (the request may have been applied)."""


class ServiceUnavailableError(SparkApiError):
    """503."""


class GatewayTimeoutError(SparkApiError):
    """504."""


class UnknownApiError(SparkApiError):
    """Any other status >= 300; `status` still holds it."""


class InvalidResponseError(SparkApiError):
    """A success status whose body is not the documented JSON (HTML, truncated, wrong shape)."""


class StreamError(SparkError):
    """A stream could not deliver every record: the server lost, failed or mangled a chunk, the
    batch ended on the server while records were outstanding, the stream stalled, or a record
    was found invalid after others had been sent.

    Results yielded before it was raised are correct and were yielded exactly once.

    Attributes:
        chunk_id, offset: the chunk concerned and its first record's offset, when one is.
        records_submitted: records the server had accepted when the stream stopped.
        outstanding: (first, last) record offsets still without a result.
        counters: the last status counters the server reported, as it sent them.
    """

    def __init__(
        self,
        message: str,
        *,
        chunk_id: str | None = None,
        offset: int | None = None,
        records_submitted: int | None = None,
        outstanding: tuple[tuple[int, int], ...] = (),
        counters: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.chunk_id = chunk_id
        self.offset = offset
        self.records_submitted = records_submitted
        self.outstanding = outstanding
        self.counters: Mapping[str, Any] = dict(counters or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


_BY_STATUS: Final[Mapping[int, type[SparkApiError]]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    408: RequestTimeoutError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    500: InternalServerError,
    502: BadGatewayError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
}


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    """(code, message) from a JSON error body. Spark's batch format is undocumented: be lenient."""
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    err = doc.get("error")
    source = err if isinstance(err, dict) else doc
    code = source.get("code", doc.get("errorCode"))
    message = source.get("message", err if isinstance(err, str) else doc.get("message"))
    return (
        str(code) if code is not None else None,
        str(message) if message is not None else None,
    )


def body_excerpt(body: bytes, secrets: Iterable[str | None]) -> str:
    """A response body as an error's `.body`: secrets masked, at most 2000 characters."""
    # Masked before cutting, so a secret straddling the cut cannot leak in part.
    return redact(body.decode("utf-8", errors="replace"), secrets)[:_BODY_CHARS]


def make_status_error(
    *,
    status: int,
    method: str,
    url: str,
    request_id: str | None,
    body: bytes,
    headers: Mapping[str, str],
    retry_after: float | None = None,
    attempts: int = 1,
    secrets: Iterable[str | None] = (),
) -> SparkApiError:
    """The `SparkApiError` subclass for an error response, with secrets scrubbed from its text."""
    secrets = list(secrets)
    code, message = _error_fields(body)
    cls = _BY_STATUS.get(status, UnknownApiError)
    return cls(
        status=status,
        method=method,
        url=url,
        request_id=request_id,
        body=body_excerpt(body, secrets),
        headers=redact_mapping(headers, secrets),
        error_code=code,
        error_message=redact(message, secrets) if message is not None else None,
        retry_after=retry_after,
        attempts=attempts,
    )
