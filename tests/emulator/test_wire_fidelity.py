"""What the emulator does on the wire beyond the documented bodies: compression both ways,
the tenant header rules per credential, the echoed request id, and faults that strike after a
request was applied."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from cspark_async.emulator import Faults

from .conftest import Api, chunk, values


async def raw_pull(api: Api, batch_id: str, accept: str) -> tuple[int, str | None, bytes]:
    """Status, Content-Encoding and the body as it came over the wire (not decoded)."""
    url = f"{api.root}/{batch_id}/chunkresults?max=100"
    async with api.session.get(
        url, headers={"Accept-Encoding": accept}, auto_decompress=False
    ) as resp:
        return resp.status, resp.headers.get("Content-Encoding"), await resp.read()


async def finished_batch(api: Api, records: int) -> str:
    batch_id = await api.create()
    await api.push(batch_id, chunk("c", values(0, records)))
    await api.wait_for(batch_id, lambda s: s["chunks_available"] == 1)
    return batch_id


@pytest.mark.parametrize(
    ("accept", "encoding", "decode"),
    [
        pytest.param("gzip, deflate", "gzip", gzip.decompress, id="gzip-preferred"),
        pytest.param("br;q=1.0, deflate", "deflate", zlib.decompress, id="deflate"),
        pytest.param("gzip;q=0, identity", None, bytes, id="gzip-refused"),
        pytest.param("identity", None, bytes, id="identity"),
    ],
)
async def test_answers_are_compressed_as_accept_encoding_allows(
    api: Api, accept: str, encoding: str | None, decode: Callable[[bytes], bytes]
) -> None:
    batch_id = await finished_batch(api, 200)
    status, coding, body = await raw_pull(api, batch_id, accept)
    assert status == 200
    assert coding == encoding
    pulled = orjson.loads(decode(body))
    assert pulled["data"][0]["outputs"] == values(0, 200)
    if encoding is not None:
        assert len(body) < len(decode(body)) / 5  # repetitive JSON shrinks a lot


async def test_small_answers_and_a_disabled_emulator_do_not_compress(
    make_api: Callable[..., Any],
) -> None:
    async with make_api() as api:
        batch_id = await api.create()
        _, coding, _ = await raw_pull(api, batch_id, "gzip")  # an empty pull: a few hundred bytes
        assert coding is None
    async with make_api(compress_responses=False) as api:
        batch_id = await finished_batch(api, 200)
        _, coding, body = await raw_pull(api, batch_id, "gzip")
        assert coding is None
        assert len(orjson.loads(body)["data"][0]["outputs"]) == 200


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        pytest.param("gzip", gzip.compress, id="gzip"),
        pytest.param("deflate", zlib.compress, id="deflate"),
    ],
)
async def test_compressed_request_bodies_are_accepted(
    api: Api, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    batch_id = await api.create()
    body = orjson.dumps({"chunks": [chunk("z", values(0, 50))]})
    status, pushed = await api.call(
        "POST",
        f"/{batch_id}/chunks",
        data=encode(body),
        headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
    )
    assert status == 200, pushed
    assert pushed["record_submitted"] == 50
    # The input buffer holds the chunk's JSON, not its compressed bytes.
    assert pushed["input_buffer_used_bytes"] + 10 >= len(orjson.dumps(chunk("z", values(0, 50))))


async def test_request_id_is_echoed_as_a_header(api: Api) -> None:
    async with api.session.get(api.root + "/status", headers={"x-request-id": "r-1"}) as resp:
        assert resp.status == 200
        assert resp.headers["x-request-id"] == "r-1"
    async with api.session.get(api.root + "/nope/status", headers={"x-request-id": "r-2"}) as resp:
        assert resp.status == 404
        assert resp.headers["x-request-id"] == "r-2"
    async with api.session.get(api.root + "/status") as resp:
        assert "x-request-id" not in resp.headers


@pytest.mark.parametrize(
    ("credentials", "headers", "expected"),
    [
        pytest.param({"api_key": "k"}, {"x-synthetic-key": "k"}, 401, id="key-needs-header"),
        pytest.param(
            {"api_key": "k"},
            {"x-synthetic-key": "k", "x-tenant-name": "other"},
            403,
            id="key-with-other-tenant",
        ),
        pytest.param({"token": "t"}, {"Authorization": "Bearer t"}, 200, id="token-no-header"),
        pytest.param(
            {"token": "t"},
            {"Authorization": "Bearer t", "x-tenant-name": "other"},
            200,
            id="token-other-tenant-ignored",
        ),
    ],
)
async def test_tenant_header_is_enforced_for_api_keys_only(
    make_api: Callable[..., Any],
    credentials: dict[str, str],
    headers: dict[str, str],
    expected: int,
) -> None:
    async with make_api(**credentials) as api:
        status, _ = await api.call("GET", "/status", headers=headers)
    assert status == expected


async def test_error_after_applies_the_request_then_answers_a_gateway_error(
    make_api: Callable[..., Any],
) -> None:
    async with make_api() as api:
        api.emulator.set_faults(Faults(error_after=1.0, endpoints={"create", "push"}))
        status, body = await api.call("POST", "", json={"service": "my-folder/my-service"})
        assert status in (502, 504)
        assert "applied" in body["error"]["message"]
        (batch,) = list(api.emulator.engine.batches())  # the create took effect
        status, body = await api.call(
            "POST", f"/{batch.id}/chunks", json={"chunks": [chunk("a", values(0, 3))]}
        )
        assert status in (502, 504)
        api.emulator.set_faults(None)
        results = await api.drain(batch.id, 1)
        assert results[0]["outputs"] == values(0, 3)  # the push took effect too


def test_error_after_statuses_must_be_5xx() -> None:
    with pytest.raises(ValueError, match="error_after_statuses"):
        Faults(error_after=0.5, error_after_statuses=(404,))
    assert Faults(error_after=0.1).active
