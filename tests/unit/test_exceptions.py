"""The error tree, the status map, and what error messages show (never secrets)."""

from __future__ import annotations

import pytest

import cspark_async as sdk
from cspark_async._exceptions import make_status_error

SECRET = "sk-very-secret-key"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, sdk.BadRequestError),
        (401, sdk.UnauthorizedError),
        (403, sdk.ForbiddenError),
        (404, sdk.NotFoundError),
        (409, sdk.ConflictError),
        (415, sdk.UnsupportedMediaTypeError),
        (422, sdk.UnprocessableEntityError),
        (429, sdk.RateLimitError),
        (500, sdk.InternalServerError),
        (503, sdk.ServiceUnavailableError),
        (504, sdk.GatewayTimeoutError),
        (302, sdk.UnknownApiError),
        (408, sdk.RequestTimeoutError),
        (413, sdk.PayloadTooLargeError),
        (502, sdk.BadGatewayError),
        (405, sdk.UnknownApiError),
    ],
)
def test_status_map_keeps_every_status(status: int, cls: type[sdk.SparkApiError]) -> None:
    error = make_status_error(
        status=status,
        method="GET",
        url="http://h/t/api/v4/batch/x",
        request_id="rid",
        body=b"",
        headers={},
    )
    assert type(error) is cls
    assert error.status == status  # the official SDK loses it for unmapped statuses
    assert isinstance(error, sdk.SparkApiError)
    assert isinstance(error, sdk.SparkError)
    assert str(error).startswith(f"{status} ")


def test_tree() -> None:
    assert issubclass(sdk.SparkSdkError, sdk.SparkError)
    assert issubclass(sdk.SparkConnectionError, sdk.SparkError)
    assert not issubclass(sdk.SparkConnectionError, sdk.SparkSdkError)
    assert issubclass(sdk.SparkTimeoutError, sdk.SparkConnectionError)
    assert issubclass(sdk.InvalidResponseError, sdk.SparkApiError)
    assert not issubclass(sdk.SparkApiError, sdk.SparkSdkError)


def test_json_error_body_is_parsed() -> None:
    body = (
        b'{"status": 404, "error": {"code": "BATCH_NOT_FOUND", "message": "batch x not found"},'
        b' "request_id": "rid"}'
    )
    error = make_status_error(
        status=404,
        method="GET",
        url="http://h/t/api/v4/batch/x",
        request_id="rid",
        body=body,
        headers={"x": "y"},
        attempts=1,
    )
    assert (error.error_code, error.error_message) == ("BATCH_NOT_FOUND", "batch x not found")
    assert error.method == "GET"
    assert error.url == "http://h/t/api/v4/batch/x"
    assert error.request_id == "rid"
    assert error.body == body.decode()
    assert str(error) == (
        "404 NotFoundError: GET http://h/t/api/v4/batch/x failed: [BATCH_NOT_FOUND] "
        "batch x not found (request_id=rid)"
    )
    assert "BATCH_NOT_FOUND" in repr(error)


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        pytest.param(b'{"errorCode": "E1", "message": "m"}', "E1", "m", id="v1-style"),
        pytest.param(b'{"error": "plain text"}', None, "plain text", id="error-string"),
        pytest.param(b"[1, 2]", None, None, id="json-array"),
        pytest.param(b"<html><body>Bad Gateway</body></html>", None, None, id="html"),
        pytest.param(b"", None, None, id="empty"),
    ],
)
def test_lenient_error_bodies(body: bytes, code: str | None, message: str | None) -> None:
    error = make_status_error(
        status=502, method="POST", url="u", request_id=None, body=body, headers={}
    )
    assert (error.error_code, error.error_message) == (code, message)


def test_non_json_body_excerpt_in_message() -> None:
    error = make_status_error(
        status=502,
        method="GET",
        url="u",
        request_id="r",
        body=b"<html>\n  <h1>Bad   Gateway</h1></html>" + b"x" * 500,
        headers={},
        attempts=3,
    )
    text = str(error)
    assert "<html> <h1>Bad Gateway</h1>" in text
    assert text.endswith("... after 3 attempts (request_id=r)")
    assert len(text) < 400


def test_secrets_are_scrubbed_from_body_and_message() -> None:
    body = f'{{"error": {{"code": "BAD_KEY", "message": "key {SECRET} is invalid"}}}}'.encode()
    error = make_status_error(
        status=401,
        method="GET",
        url="u",
        request_id="r",
        body=body,
        headers={},
        secrets=[SECRET, None],
    )
    for text in (str(error), repr(error), error.body, error.error_message or ""):
        assert SECRET not in text
    assert "key **** is invalid" in str(error)


def test_sdk_and_connection_error_reprs() -> None:
    assert repr(sdk.SparkSdkError("bad")) == "SparkSdkError('bad')"
    err = sdk.SparkTimeoutError("timed out", method="GET", url="u", request_id="r", attempts=3)
    assert str(err) == "timed out"
    assert "attempts=3" in repr(err)
