"""The emulator's error codes and status lines read the same on every Python it runs on.

Python 3.13 renamed some `http.HTTPStatus` phrases (413, 414, 416, 422); the emulator keeps its
own table, so these cases pass unchanged on 3.10 to 3.13.
"""

from __future__ import annotations

import http
import io
from typing import Any

import aiohttp
import pytest

from cspark_async.emulator import Emulator
from cspark_async.emulator._status_text import (
    ERROR_CODES,
    REASON_PHRASES,
    error_code,
    reason_phrase,
)

from .conftest import chunk, values

# The wording before RFC 9110, which the emulator keeps; every other phrase it sends is the same
# on every interpreter.
RENAMED_IN_PY313 = {413: "Request Entity Too Large"}

# The body limit is max(64 MiB, 2 x the input buffer): just over it with a small buffer.
OVERSIZED = b'{"chunks": [' + b" " * (64 * 1024 * 1024 + 10) + b"]}"

# One request per error that aiohttp raises before a handler runs, with the code it must get.
ROUTER_ERRORS = [
    pytest.param("GET", "/api/v4/no/such/route", None, 404, "NOT_FOUND", id="404"),
    pytest.param(
        "DELETE", "/{tenant}/api/v4/batch", None, 405, "METHOD_NOT_ALLOWED", id="405"
    ),
    pytest.param(
        "POST", "/{tenant}/api/v4/batch/{batch}/chunks", OVERSIZED, 413,
        "REQUEST_ENTITY_TOO_LARGE", id="413",
    ),
]  # fmt: skip


async def _send(
    session: aiohttp.ClientSession, method: str, url: str, body: bytes | None
) -> tuple[int, str, Any]:
    data = None if body is None else io.BytesIO(body)
    headers = {"Content-Type": "application/json"}
    async with session.request(method, url, data=data, headers=headers) as resp:
        assert resp.content_type == "application/json", await resp.text()
        return resp.status, resp.reason or "", await resp.json()


def test_every_code_the_table_holds_has_a_case_below() -> None:
    assert {p.values[3] for p in ROUTER_ERRORS} == set(ERROR_CODES)


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), ROUTER_ERRORS)
async def test_router_errors_carry_the_emulators_own_code_and_phrase(
    make_api: Any, method: str, path: str, body: bytes | None, status: int, code: str
) -> None:
    async with make_api(input_buffer_bytes=1000) as api:
        batch_id = await api.create()
        url = api.emulator.url + path.format(tenant=api.emulator.tenant, batch=batch_id)
        got_status, reason, got = await _send(api.session, method, url, body)
        assert (got_status, got["status"], got["error"]["code"]) == (status, status, code)
        assert reason == REASON_PHRASES[status]
        assert reason == RENAMED_IN_PY313.get(status, http.HTTPStatus(status).phrase)
        assert (await api.status(batch_id))["chunks_submitted"] == 0


async def test_a_push_larger_than_the_buffer_keeps_the_old_413_phrase(make_api: Any) -> None:
    async with make_api(input_buffer_bytes=1000) as api:
        batch_id = await api.create()
        push = {"chunks": [chunk("c1", values(0, 200))]}
        async with api.session.post(f"{api.root}/{batch_id}/chunks", json=push) as resp:
            body = await resp.json()
            assert (resp.status, resp.reason) == (413, "Request Entity Too Large")
        assert body["error"]["code"] == "CHUNKS_TOO_LARGE"


async def test_an_unauthorised_request_has_the_standard_401_line() -> None:
    async with (
        Emulator(api_key="k-1") as emu,
        aiohttp.ClientSession() as session,
        session.get(f"{emu.base_url}/api/v4/batch/status") as resp,
    ):
        assert (resp.status, resp.reason) == (401, "Unauthorized")
        assert (await resp.json())["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("status", sorted(REASON_PHRASES))
def test_each_phrase_is_the_standard_one_bar_the_renamed(status: int) -> None:
    expected = RENAMED_IN_PY313.get(status, http.HTTPStatus(status).phrase)
    assert reason_phrase(status) == expected


def test_a_status_outside_the_tables_gets_a_stable_code_and_the_default_phrase() -> None:
    assert error_code(418) == "HTTP_418"
    assert reason_phrase(418) is None
