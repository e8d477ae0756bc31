"""`ApiResponse[T]`: what every API call returns — the raw JSON exactly as documented, plus a
typed view structured on first access."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic

import cattrs
from typing_extensions import TypeVar

from ._exceptions import InvalidResponseError
from ._http import RawResponse
from ._serde import structure

__all__ = ["ApiResponse"]

T = TypeVar("T")
D = TypeVar("D", default=Any)

_UNSET: Any = object()


class ApiResponse(Generic[T, D]):
    """One successful call: `ApiResponse[Model, BodyJSON]`.

    Attributes:
        status: the HTTP status (2xx).
        headers: the response headers (case-insensitive).
        data: the decoded JSON body, exactly as the API documents it (`batch.data['id']`,
            `status.data['records_available']`, `result.data['data']`...). Its static type is
            the documented shape (`BatchJSON`, `BatchStatusJSON`...), so a type checker
            catches a misspelt key; nothing is checked at run time.
        request_id: the `x-request-id` the call was sent with.
        method, url: what was called.
        parsed: the typed view (`Batch`, `BatchStatus`, `PullResult`, `BatchDescription`).
    """

    __slots__ = ("_model", "_parsed", "data", "headers", "method", "request_id", "status", "url")

    def __init__(self, raw: RawResponse, data: D, model: type[T]) -> None:
        self.status: int = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.request_id: str = raw.request_id
        self.method: str = raw.method
        self.url: str = raw.url
        self.data: D = data
        self._model = model
        self._parsed: Any = _UNSET

    @property
    def parsed(self) -> T:
        """The body as a `T`, built once on first access.

        Raises:
            InvalidResponseError: the body's shape does not fit `T` (e.g. a string where a count
                belongs). Unknown fields are ignored and missing ones are None.
        """
        if self._parsed is _UNSET:
            try:
                self._parsed = structure(self.data, self._model)
            except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
                details = (
                    "; ".join(cattrs.transform_error(exc))
                    if isinstance(exc, cattrs.BaseValidationError)
                    else str(exc)
                )
                raise InvalidResponseError(
                    status=self.status,
                    method=self.method,
                    url=self.url,
                    request_id=self.request_id,
                    headers=self.headers,
                    error_message=f"the body does not fit {self._model.__name__}: {details}",
                ) from None
        return self._parsed  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        model = self._model.__name__
        return f"<ApiResponse[{model}] status={self.status} request_id={self.request_id}>"
