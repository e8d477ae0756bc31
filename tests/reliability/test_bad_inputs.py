"""The bad-input catalogue: what a user can get wrong, and what they get back.

Every case runs the public API against a real server on loopback (the emulator, or a scripted
`Loopback` server for replies the emulator never gives) and asserts

- the exception class: `SparkSdkError` for a client-side problem, a `SparkApiError` subclass
  (or `SparkConnectionError` for a body cut short) for a server-side one;
- that the message names the problem, and the record offset where there is one;
- for client-side problems, that nothing was sent: every request the client's session starts is
  recorded (`RequestLog`), and the emulator's own state is checked too.

Cases already covered elsewhere are referenced from tests/reliability/README.md, not repeated.
A case marked `xfail(strict=True, reason="BUG: ...")` documents an SDK bug for the lead to fix.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from attrs import frozen

import cspark_async as sdk
from cspark_async import (
    AsyncClient,
    AsyncPipeline,
    BatchChunk,
    ChunkData,
    ResultStream,
    StreamResult,
    UriParams,
)
from cspark_async._auth import OAuth2Auth
from cspark_async.emulator import Emulator

from ._loopback import Loopback, RequestLog, loopback, traced_client

SERVICE = "my-folder/my-service"  # the emulator's echo service


def bug(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"BUG: {reason}")


@frozen
class Stack:
    emu: Emulator
    spark: AsyncClient
    log: RequestLog

    def batches(self) -> list[Any]:
        return list(self.emu.engine.batches())

    def pushes(self) -> int:
        return self.log.count("POST", "/chunks")

    def assert_nothing_sent(self) -> None:
        assert self.log.requests == [], f"sent: {[(m, u) for m, u, _ in self.log.requests]}"


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    """The emulator, and a client on it whose every request is recorded."""
    async with (
        Emulator(workers=2) as emu,
        traced_client(emu.base_url, max_retries=2) as (spark, log),
    ):
        yield Stack(emu, spark, log)


@pytest.fixture(autouse=True)
def _no_cspark_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test alone, never from the developer's CSPARK_* variables."""
    for name in ("BASE_URL", "API_KEY", "BEARER_TOKEN", "CLIENT_ID", "CLIENT_SECRET", "OAUTH_PATH"):
        monkeypatch.delenv(f"CSPARK_{name}", raising=False)


async def open_pipeline(stack: Stack, **create: Any) -> AsyncPipeline:
    """A fresh batch pipeline; the request log starts empty after it."""
    batch = await stack.spark.batches.create(SERVICE, **create)
    stack.log.clear()
    return stack.spark.batches.of(batch.data["id"])


async def drain(stream: ResultStream) -> list[StreamResult]:
    return [result async for result in stream]


def names_offset(message: str, offset: int) -> bool:
    """Whether `message` points at record `offset` ("record at offset 3", "row 3", "record 3")."""
    return re.search(rf"\b(record|row) (at offset )?{offset}\b", message) is not None


# ---- 1. connection settings ---------------------------------------------------------------------
# Base URL shapes (no tenant, extra segments, query, scheme), bad numbers and OAuth inputs are
# covered by tests/unit/test_config.py; these are the gaps. A counting server stands behind the
# URL: a refused setting must reach nobody.

ClientFactory = Callable[[str], AsyncClient]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda url: AsyncClient(url, api_key="   "),
            "no credential: pass api_key=",
            id="blank-api-key",
        ),
        pytest.param(
            lambda url: AsyncClient(url, token=" Bearer "), "no credential", id="bearer-prefix-only"
        ),
        pytest.param(
            lambda url: AsyncClient(url, api_key="k", session="not-a-session"),  # type: ignore[arg-type]
            "session must be an aiohttp.ClientSession",
            id="session-not-a-session",
        ),
        pytest.param(
            lambda url: AsyncClient(url, api_key="k", timeout="30"),  # type: ignore[arg-type]
            "timeout must be a positive number of seconds",
            id="timeout-as-string",
        ),
        pytest.param(
            lambda url: AsyncClient(url, api_key="k", max_retries="3"),  # type: ignore[arg-type]
            "max_retries must be an integer >= 0",
            id="max-retries-as-string",
        ),
        pytest.param(
            lambda url: AsyncClient(url, api_key=12345),  # type: ignore[arg-type]
            "api_key must be a string",
            id="api-key-not-a-string",
        ),
        pytest.param(
            lambda url: AsyncClient(url, token=b"raw-token"),  # type: ignore[arg-type]
            "token must be a string",
            id="token-as-bytes",
        ),
        pytest.param(
            lambda url: AsyncClient(8080, api_key="k"),  # type: ignore[arg-type]
            "base_url must be",
            id="base-url-not-a-string",
        ),
        pytest.param(
            lambda url: AsyncClient(url.rsplit("/", 1)[0], tenant=7, api_key="k"),  # type: ignore[arg-type]
            "tenant must be",
            id="tenant-not-a-string",
        ),
        pytest.param(
            lambda url: AsyncClient(url, api_key="k", logger="debug"),  # type: ignore[arg-type]
            "logger must be",
            id="logger-not-a-logger",
        ),
    ],
)
async def test_client_settings_are_refused_before_any_request(
    make: ClientFactory, message: str
) -> None:
    async def anything(_request: web.Request) -> web.StreamResponse:
        return web.json_response({})

    async with loopback(anything) as server:
        with pytest.raises(sdk.SparkSdkError) as info:
            make(server.base_url())
        assert message in str(info.value)
        assert server.received == []


# ---- 2. service URIs ----------------------------------------------------------------------------
# tests/unit/test_uri.py and test_create_body.py check the parser's verdicts (class only);
# here each goes through create() and the one-call stream_outputs(), with the message and
# the guarantee that no batch was created.

URI_CASES = [
    pytest.param("just-a-service", "invalid service URI 'just-a-service'", id="one-segment"),
    pytest.param("my-folder/my-service/extra", "invalid service URI", id="three-segments"),
    pytest.param("my-folder/my-service[1.2", "invalid service URI", id="unclosed-version"),
    pytest.param("my folder/my-service", "invalid service URI", id="space-in-name"),
    pytest.param("", "invalid service URI ''", id="empty"),
    pytest.param(UriParams(folder="my-folder"), "service name is missing", id="folder-only"),
    pytest.param(UriParams(service="my-service"), "folder name is missing", id="service-only"),
    pytest.param(42, "a service URI must be a string, got int", id="not-a-string"),
]


@pytest.mark.parametrize(("uri", "message"), URI_CASES)
async def test_bad_service_uri_in_create(stack: Stack, uri: Any, message: str) -> None:
    with pytest.raises(sdk.SparkSdkError) as info:
        await stack.spark.batches.create(uri)
    assert message in str(info.value)
    if isinstance(uri, str):
        assert "expected 'folder/service'" in str(info.value)  # the fix is in the message
    stack.assert_nothing_sent()
    assert stack.batches() == []


@pytest.mark.parametrize(("uri", "message"), URI_CASES)
async def test_bad_service_uri_in_one_call_stream(stack: Stack, uri: Any, message: str) -> None:
    with pytest.raises(sdk.SparkSdkError) as info:
        stack.spark.batches.stream_outputs(uri, [{"n": 1}])  # refused at the call
    assert message in str(info.value)
    stack.assert_nothing_sent()
    assert stack.batches() == []


# ---- 3. push(): arguments and records -----------------------------------------------------------
# tests/client/test_request_shapes.py::test_push_refusals_send_nothing checks the class and that
# nothing goes out (against aioresponses); these add the message, and the cases it lacks.

PUSH_CASES = [
    pytest.param(
        {}, "takes exactly one of inputs=, data=, chunks= or raw=; got none", id="no-data-argument"
    ),
    pytest.param({"inputs": [{"n": 1}], "raw": "[]"}, "got inputs=, raw=", id="two-data-arguments"),
    pytest.param({"inputs": []}, "holds no records", id="empty-dataset"),
    pytest.param({"inputs": [["n"]]}, "holds no records", id="header-row-only"),
    pytest.param({"chunks": []}, "no chunks", id="empty-chunk-list"),
    pytest.param({"raw": '{"chunks": []}'}, "no chunks", id="raw-without-chunks"),
    pytest.param(
        {"inputs": "n=1"}, "inputs must be a list of records, got str", id="inputs-string"
    ),
    pytest.param(
        {"inputs": {"n": 1}}, "inputs must be a list of records, got dict", id="inputs-one-dict"
    ),
    pytest.param({"data": {"inputs": [{"n": 1}]}}, "data must be a ChunkData", id="data-a-dict"),
    pytest.param(
        {"chunks": [{"id": "c1"}]}, "chunks[0] must be a BatchChunk, got dict", id="chunk-a-dict"
    ),
    pytest.param({"chunks": 5}, "chunks must be", id="chunks-an-int"),
    pytest.param({"raw": "{chunks: []}"}, "raw push data is not valid JSON", id="raw-not-json"),
    pytest.param(
        {"raw": '[{"id": "c1", "data": {"inputs": {}}}]'},
        "chunks[0].data.inputs must be an array",
        id="raw-inputs-not-array",
    ),
    pytest.param(
        {"inputs": [{"n": 1}], "if_chunk_id_duplicated": "overwrite"},
        "if_chunk_id_duplicated must be one of replace, ignore, throw, got 'overwrite'",
        id="unknown-duplicate-policy",
    ),
    # Records the stream refuses: push() refuses them too, before sending.
    pytest.param({"inputs": [["n", "m"], [1, 2], [3]]}, "row 1", id="ragged-rows"),
    pytest.param({"inputs": [["n"], [1], {"n": 2}]}, "row 1", id="dict-after-header-row"),
    pytest.param({"inputs": [1, 2, 3]}, "record 0", id="records-not-dicts-or-lists"),
    pytest.param({"inputs": [[1, 2], [3, 4]]}, "header row", id="header-row-not-strings"),
    pytest.param(
        {"data": ChunkData(inputs=[{"n": 1}], parameters={"rate": math.nan})},
        "parameters",
        id="parameters-nan",
    ),
]


@pytest.mark.parametrize(("kwargs", "message"), PUSH_CASES)
async def test_bad_push_sends_nothing(stack: Stack, kwargs: dict[str, Any], message: str) -> None:
    pipeline = await open_pipeline(stack)
    with pytest.raises(sdk.SparkSdkError) as info:
        await pipeline.push(**kwargs)
    assert message in str(info.value)
    stack.assert_nothing_sent()
    assert pipeline.stats.chunks == 0
    assert stack.emu.engine.batch(pipeline.batch_id).chunks_submitted == 0


UNENCODABLE = [
    pytest.param(math.nan, "nan", id="nan"),
    pytest.param(-math.inf, "inf", id="negative-infinity"),
    pytest.param({"deep": [1, math.inf]}, "inf", id="nested-infinity"),
    pytest.param(b"\x00\x01", "bytes", id="bytes"),
    pytest.param({1, 2}, "set", id="set"),
    pytest.param(dt.datetime(2026, 1, 31, 12, 0), "datetime", id="datetime-without-policy"),
    pytest.param(dt.date(2026, 1, 31), "date", id="date-without-policy"),
    pytest.param(decimal.Decimal("1.10"), "Decimal", id="decimal"),
    pytest.param(object(), "object", id="arbitrary-object"),
]


@pytest.mark.parametrize(("value", "kind"), UNENCODABLE)
async def test_push_refuses_values_json_cannot_encode(stack: Stack, value: Any, kind: str) -> None:
    pipeline = await open_pipeline(stack)
    with pytest.raises(sdk.SparkSdkError) as info:
        await pipeline.push(inputs=[{"n": 0}, {"n": value}])
    message = str(info.value)
    assert kind.lower() in message.lower()
    assert names_offset(message, 1), message
    stack.assert_nothing_sent()


# ---- 4. stream_outputs(): records -------------------------------------------------------------
# A record is checked when the stream reads it, before the chunk that would carry it is sent;
# the pipeline is then cancelled (on_exit='cancel'). tests/unit/test_streaming_parts.py checks
# the chunker's messages; tests/streaming/test_stream_outputs.py::
# test_bad_records_fail_before_their_chunk_is_sent covers NaN at offset 2 end to end.

RECORD_CASES = [
    pytest.param(
        [["n", "m"], [1, 2], [3]], {}, 1, "has 1 values but the header names 2", id="ragged-row"
    ),
    pytest.param(
        [[1], [2]],
        {"headers": ["n", "m"]},
        0,
        "has 1 values but the header names 2",
        id="rows-narrower-than-headers",
    ),
    pytest.param(
        [["n"], [1], {"n": 2}],
        {},
        1,
        "is a dict, but the stream has a header row",
        id="dict-after-header-row",
    ),
    pytest.param(
        [{"n": 0}, {"n": 1}, [2]],
        {},
        2,
        "is a list, but the stream started with dicts",
        id="list-after-dicts",
    ),
    pytest.param([{"n": 0}, None], {}, 1, "is a NoneType", id="none-record"),
    pytest.param([5, 6], {}, 0, "must be a dict, or a header row", id="scalar-records"),
    pytest.param(["n=1"], {}, 0, "got str", id="string-records"),
    pytest.param(
        [{"n": 0}, {"n": {"x": [math.inf]}}],
        {},
        1,
        "cannot be encoded as JSON: inf",
        id="nested-infinity",
    ),
    pytest.param(
        [{"n": 0}, {"n": -math.inf}],
        {},
        1,
        "cannot be encoded as JSON: -inf",
        id="negative-infinity",
    ),
    pytest.param([{"n": 0}, {"n": b"\xff"}], {}, 1, ".decode() for bytes", id="bytes"),
    pytest.param([{"n": {1, 2}}], {}, 0, "list() for sets", id="set"),
    pytest.param(
        [{"n": 0}, {"n": dt.datetime(2026, 1, 31)}],
        {},
        1,
        ".isoformat() for dates",
        id="datetime-without-policy",
    ),
    pytest.param([{"n": dt.date(2026, 1, 31)}], {}, 0, "date", id="date-without-policy"),
    pytest.param([{"n": decimal.Decimal("1.1")}], {}, 0, "Decimal", id="decimal"),
    pytest.param([["n"], [1], [math.nan]], {}, 1, "nan is not valid JSON", id="nan-in-a-row"),
]


@pytest.mark.parametrize(("records", "options", "offset", "message"), RECORD_CASES)
async def test_bad_record_stops_the_stream_before_its_chunk_is_sent(
    stack: Stack, records: list[Any], options: dict[str, Any], offset: int, message: str
) -> None:
    pipeline = await open_pipeline(stack)
    with pytest.raises(sdk.SparkSdkError) as info:
        await drain(pipeline.stream_outputs(records, chunk_size=10, **options))
    text = str(info.value)
    assert message in text
    assert f"record at offset {offset}" in text
    assert stack.pushes() == 0  # the bad record is in the first chunk: no chunk went out
    assert stack.emu.engine.batch(pipeline.batch_id).status == "cancelled"


@pytest.mark.parametrize(
    ("records", "message"),
    [
        pytest.param(
            [[1, 2], [3, 4]],
            "header row (first record) must be a list of column names",
            id="header-row-not-strings",
        ),
        pytest.param(
            [["n", "n"], [1, 2]],
            "names a column twice: ['n', 'n']",
            id="header-row-duplicate-names",
        ),
        pytest.param([[], [1]], "is empty: name at least one column", id="header-row-empty"),
    ],
)
async def test_bad_header_row(stack: Stack, records: list[Any], message: str) -> None:
    pipeline = await open_pipeline(stack)
    with pytest.raises(sdk.SparkSdkError) as info:
        await drain(pipeline.stream_outputs(records))
    assert message in str(info.value)
    assert stack.pushes() == 0


async def test_bad_record_in_a_later_chunk_only_earlier_chunks_go_out(stack: Stack) -> None:
    pipeline = await open_pipeline(stack)
    records = [{"n": n} for n in range(250)] + [{"n": math.nan}] + [{"n": 251}]
    seen = 0
    # Records went out before the bad one was found: not a SparkSdkError ("nothing sent").
    with pytest.raises(sdk.StreamError, match="record at offset 250 cannot be encoded") as info:
        async for result in pipeline.stream_outputs(records, chunk_size=100):
            seen += result.records
    assert not isinstance(info.value, sdk.SparkSdkError)
    assert info.value.offset == 250
    assert info.value.records_submitted is not None
    assert info.value.records_submitted <= 200
    batch = stack.emu.engine.batch(pipeline.batch_id)
    assert batch.records_submitted <= 200  # chunks 0 and 1 at most; chunk 2 holds offset 250
    assert seen <= 200
    assert batch.status == "cancelled"


async def test_one_record_bigger_than_the_input_buffer(stack: Stack) -> None:
    # A 10 kB input buffer: chunks are capped at a quarter of it, but one record may take a
    # chunk to itself up to the whole buffer. A 5 kB record goes; a 12 kB one cannot.
    pipeline = await open_pipeline(stack, max_input_size=0.01)
    fits = [{"n": 0}, {"n": 1, "blob": "x" * 5000}, {"n": 2}]
    assert [r.records for r in await drain(pipeline.stream_outputs(fits, chunk_size=2))] == [
        1,
        1,
        1,
    ]
    pipeline = await open_pipeline(stack, max_input_size=0.01)
    records = [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3, "blob": "x" * 12_000}]
    with pytest.raises(sdk.StreamError) as info:  # the first chunk may have gone out
        await drain(pipeline.stream_outputs(records, chunk_size=2))
    assert info.value.offset == 3
    message = str(info.value)
    assert "record at offset 3 takes 12" in message  # ~12 kB of JSON
    assert "the pipeline's input buffer limits it" in message
    assert "max_input_size" in message  # the fix
    assert stack.emu.engine.batch(pipeline.batch_id).records_submitted <= 2


@pytest.mark.parametrize(
    "records",
    [
        pytest.param(5, id="an-int"),
        pytest.param({"n": 1}, id="one-dict"),
        pytest.param("n\n1\n2", id="csv-text"),
    ],
)
async def test_records_that_are_not_iterable_are_refused_at_the_call(
    stack: Stack, records: Any
) -> None:
    pipeline = await open_pipeline(stack)
    with pytest.raises(sdk.SparkSdkError, match="records must be an iterable"):
        await drain(pipeline.stream_outputs(records))
    stack.assert_nothing_sent()
    assert stack.emu.engine.batch(pipeline.batch_id).status == "created"


@pytest.mark.parametrize(
    "records", [pytest.param([], id="no-records"), pytest.param([["n"]], id="header-row-only")]
)
async def test_empty_dataset_streams_nothing_and_is_not_an_error(
    stack: Stack, records: list[Any]
) -> None:
    """Not an error: a filter may leave nothing to do. No chunk is sent and the caller's pipeline
    is left as it was (push() of an empty list, by contrast, is refused: see section 3)."""
    pipeline = await open_pipeline(stack)
    assert await drain(pipeline.stream_outputs(records)) == []
    assert stack.pushes() == 0
    assert stack.emu.engine.batch(pipeline.batch_id).status == "created"


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        pytest.param([], None, id="empty-dataset"),
        pytest.param([7], "record at offset 0 must be a dict", id="first-record-invalid"),
    ],
)
async def test_one_call_stream_creates_no_batch_without_a_valid_first_record(
    stack: Stack, records: list[Any], expected: str | None
) -> None:
    message = None
    try:
        await drain(stack.spark.batches.stream_outputs(SERVICE, records))
    except sdk.SparkSdkError as error:
        message = str(error)
    assert message == expected or (expected is not None and expected in str(message))
    stack.assert_nothing_sent()
    assert stack.batches() == []


# ---- 5. stream_outputs(): options (wrong types, <= 0) -------------------------------------------
# tests/streaming/test_stream_outputs.py::test_bad_options_are_refused_at_the_call covers
# chunk_size=0, max_in_flight=-1, on_exit and ordered on a pipeline; the one-call form must
# refuse them before it creates a batch.

STREAM_OPTION_CASES = [
    pytest.param(
        {"chunk_size": -1},
        "chunk_size must be a positive integer, got -1",
        id="chunk-size-negative",
    ),
    pytest.param(
        {"chunk_size": "10"},
        "chunk_size must be a positive integer, got '10'",
        id="chunk-size-string",
    ),
    pytest.param(
        {"chunk_size": True},
        "chunk_size must be a positive integer, got True",
        id="chunk-size-bool",
    ),
    pytest.param(
        {"max_in_flight": 0},
        "max_in_flight must be a positive integer, got 0",
        id="max-in-flight-zero",
    ),
    pytest.param(
        {"max_in_flight": 2.5},
        "max_in_flight must be a positive integer, got 2.5",
        id="max-in-flight-float",
    ),
    pytest.param(
        {"max_chunk_bytes": 0},
        "max_chunk_bytes must be a positive integer",
        id="max-chunk-bytes-zero",
    ),
    pytest.param({"max_chunk_bytes": 10}, "leaves no room for a record", id="max-chunk-bytes-tiny"),
    pytest.param(
        {"max_chunk_bytes": "1MB"},
        "max_chunk_bytes must be a positive integer",
        id="max-chunk-bytes-string",
    ),
    pytest.param({"headers": "n,m"}, "headers must be a list of column names", id="headers-string"),
    pytest.param(
        {"headers": ["n", 2]}, "headers must be a list of column names", id="headers-not-strings"
    ),
    pytest.param({"headers": []}, "headers is empty", id="headers-empty"),
    pytest.param({"parameters": [1]}, "parameters must be a dict, got list", id="parameters-list"),
    pytest.param(
        {"parameters": {"rate": math.nan}},
        "parameters cannot be encoded as JSON: nan",
        id="parameters-nan",
    ),
    pytest.param({"summary": "SUM"}, "summary must be a dict, got str", id="summary-string"),
    pytest.param({"progress": 5}, "progress must be a callable", id="progress-not-callable"),
    pytest.param({"ordered": "yes"}, "ordered must be True or False", id="ordered-string"),
    pytest.param(
        {"create": {"max_workers": 5}},
        "create= holds an option create() does not take",
        id="create-unknown-option",
    ),
    pytest.param(
        {"create": {"min_runners": 0}},
        "min_runners must be an integer >= 1",
        id="create-bad-option",
    ),
    pytest.param({"create": "max_runners=5"}, "create= must be", id="create-a-string"),
]


@pytest.mark.parametrize(("options", "message"), STREAM_OPTION_CASES)
async def test_bad_stream_option_refused_before_any_batch(
    stack: Stack, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(sdk.SparkSdkError) as info:
        stack.spark.batches.stream_outputs(SERVICE, [{"n": 1}], **options)
    assert message in str(info.value)
    stack.assert_nothing_sent()
    assert stack.batches() == []


# ---- 6. create(): options -------------------------------------------------------------------
# tests/unit/test_create_body.py::test_invalid_options_raise_before_sending checks the class of
# these on the pure body builder; here: the message, through the client, nothing sent.

CREATE_CASES = [
    pytest.param({"min_runners": 0}, "min_runners must be an integer >= 1, got 0", id="min-zero"),
    pytest.param(
        {"max_runners": "10"}, "max_runners must be an integer >= 1, got '10'", id="max-string"
    ),
    pytest.param({"chunks_per_vm": 1.5}, "chunks_per_vm must be an integer >= 1", id="float"),
    pytest.param(
        {"min_runners": 20, "max_runners": 10},
        "min_runners (20) exceeds max_runners (10)",
        id="min-above-max",
    ),
    pytest.param(
        {"max_input_size": -1},
        "max_input_size must be a positive number of megabytes",
        id="input-size-negative",
    ),
    pytest.param(
        {"max_output_size": math.inf},
        "max_output_size must be a positive number",
        id="output-size-infinite",
    ),
    pytest.param(
        {"accuracy": 95},
        "accuracy must be a number between 0.0 and 1.0, got 95",
        id="accuracy-as-percent",
    ),
    pytest.param(
        {"active_since": 20260131},
        "active_since must be a string or a datetime",
        id="active-since-int",
    ),
    pytest.param(
        {"correlation_id": 5}, "correlation_id must be a string, got 5", id="correlation-id-int"
    ),
    pytest.param(
        {"selected_outputs": ["premium", 1]},
        "selected_outputs must be a string or a list of strings",
        id="outputs-mixed",
    ),
    pytest.param(
        {"subservices": 5},
        "subservices must be a string or a list of strings",
        id="subservices-int",
    ),
    pytest.param({"extras": "service=x"}, "extras must be", id="extras-string"),
]


@pytest.mark.parametrize(("kwargs", "message"), CREATE_CASES)
async def test_bad_create_option_sends_nothing(
    stack: Stack, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(sdk.SparkSdkError) as info:
        await stack.spark.batches.create(SERVICE, **kwargs)
    assert message in str(info.value)
    stack.assert_nothing_sent()
    assert stack.batches() == []


@pytest.mark.parametrize(
    ("batch_id", "message"),
    [
        pytest.param("", "a batch pipeline id is required, got ''", id="empty"),
        pytest.param("   ", "a batch pipeline id is required", id="blank"),
        pytest.param(None, "a batch pipeline id is required, got None", id="none"),
    ],
)
async def test_bad_batch_id_for_of(stack: Stack, batch_id: Any, message: str) -> None:
    with pytest.raises(sdk.SparkSdkError) as info:
        stack.spark.batches.of(batch_id)
    assert message in str(info.value)
    stack.assert_nothing_sent()


# ---- 7. duplicate chunk ids, under each policy ---------------------------------------------------
# tests/unit/test_ledger.py checks the ledger; test_emulator_flows.py::
# test_blank_ids_and_replace_over_the_wire checks 'replace' over the wire.


def chunk(chunk_id: str, *values: int) -> BatchChunk:
    return BatchChunk(id=chunk_id, data=ChunkData(inputs=[{"n": v} for v in values]))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param([chunk("c1", 1)], [chunk("c1", 2)], id="across-pushes"),
        pytest.param([], [chunk("c1", 1), chunk("c1", 2)], id="within-one-push"),
        pytest.param([chunk("c1", 1)], [chunk("c2", 2), chunk("c1", 3)], id="one-of-several"),
    ],
)
async def test_duplicate_chunk_id_under_throw_sends_nothing(
    stack: Stack, first: list[BatchChunk], second: list[BatchChunk]
) -> None:
    pipeline = await open_pipeline(stack)
    if first:
        await pipeline.push(chunks=first)
    stack.log.clear()
    with pytest.raises(sdk.SparkSdkError) as info:
        await pipeline.push(chunks=second, if_chunk_id_duplicated="throw")
    message = str(info.value)
    assert "chunk id 'c1' is already used" in message
    assert pipeline.batch_id in message
    assert "nothing was pushed" in message
    stack.assert_nothing_sent()
    assert stack.emu.engine.batch(pipeline.batch_id).chunks_submitted == len(first)
    assert set(pipeline.stats) == {c.id for c in first}


async def test_duplicate_chunk_id_under_ignore_is_sent_with_a_warning(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    async with traced_client(stack.emu.base_url, logger=logging.getLogger("bad-inputs")) as (
        spark,
        log,
    ):
        batch = await spark.batches.create(SERVICE)
        pipeline = spark.batches.of(batch.data["id"])
        await pipeline.push(chunks=[chunk("c1", 1)])
        with caplog.at_level(logging.WARNING, logger="bad-inputs"):
            await pipeline.push(chunks=[chunk("c1", 2)], if_chunk_id_duplicated="ignore")
    assert "chunk id 'c1' is duplicated" in caplog.text
    assert "outputs will share the id" in caplog.text
    assert stack.emu.engine.batch(pipeline.batch_id).chunks_submitted == 2
    assert pipeline.stats["c1"] == 2  # both pushes counted under the shared id


# ---- 8. unknown batch ids ------------------------------------------------------------------------
# get_info, get_status, pull and dispose: tests/client/test_emulator_flows.py::
# test_unknown_batch_is_a_404.

UNKNOWN = "no-such-batch"


async def test_push_to_an_unknown_batch(stack: Stack) -> None:
    pipeline = stack.spark.batches.of(UNKNOWN)
    with pytest.raises(sdk.NotFoundError) as info:
        await pipeline.push(inputs=[{"n": 1}])
    error = info.value
    assert (error.status, error.error_code, error.attempts) == (404, "BATCH_NOT_FOUND", 1)
    assert f"batch '{UNKNOWN}' not found" in str(error)
    assert pipeline.stats.chunks == 0


async def test_cancel_an_unknown_batch(stack: Stack) -> None:
    pipeline = stack.spark.batches.of(UNKNOWN)
    with pytest.raises(sdk.NotFoundError, match=f"batch '{UNKNOWN}' not found"):
        await pipeline.cancel()
    assert pipeline.state == "open"  # a refused cancel changes nothing locally


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="adaptive-options"),
        pytest.param({"max_in_flight": 2, "max_chunk_bytes": 4096}, id="explicit-options"),
    ],
)
async def test_stream_through_an_unknown_batch(stack: Stack, options: dict[str, Any]) -> None:
    pipeline = stack.spark.batches.of(UNKNOWN)
    with pytest.raises(sdk.NotFoundError) as info:
        await drain(pipeline.stream_outputs([{"n": 1}], **options))
    assert f"batch '{UNKNOWN}' not found" in str(info.value)


# ---- 9. credentials -----------------------------------------------------------------------------
# Wrong API key: tests/client/test_auth_emulator.py::test_api_key. Wrong OAuth secret:
# test_oauth_wrong_secret. No credential against an enforcing emulator: test_bearer_token.


async def test_wrong_or_expired_bearer_token() -> None:
    async with (
        Emulator(token="current-token-0123") as emu,
        traced_client(emu.base_url, token="expired-token-4567") as (spark, log),
    ):
        with pytest.raises(sdk.UnauthorizedError) as info:
            await spark.batches.create(SERVICE)
        assert list(emu.engine.batches()) == []
    error = info.value
    assert (error.status, error.error_code, error.attempts) == (401, "UNAUTHORIZED", 1)
    assert "invalid or expired bearer token" in str(error)
    assert len(log.requests) == 1  # a 401 with a static token is not retried
    for text in (str(error), repr(error), error.body):
        assert "expired-token-4567" not in text
        assert "current-token-0123" not in text


async def test_expired_oauth_token_after_the_client_was_revoked() -> None:
    clients = {"my-app": "app-secret-0123"}
    async with Emulator(oauth_clients=clients) as emu:
        oauth = {"client_id": "my-app", "client_secret": "app-secret-0123"}
        async with traced_client(emu.base_url, oauth=oauth) as (spark, log):
            await spark.batches.describe()
            auth = spark._http.auth
            assert isinstance(auth, OAuth2Auth)
            del clients["my-app"]  # revoked on the server...
            auth.clock = lambda: 1e12  # ...and the token expires: the client must fetch anew
            log.clear()
            with pytest.raises(sdk.UnauthorizedError) as info:
                await spark.batches.describe()
    error = info.value
    assert error.error_code == "INVALID_CLIENT"
    assert "invalid client credentials" in str(error)
    assert error.url.endswith("/protocol/openid-connect/token")
    assert [m for m, _, _ in log.requests] == ["POST"]  # the API call itself never went out
    assert "app-secret-0123" not in str(error)


async def test_wrong_credentials_fail_a_stream_fast() -> None:
    async with (
        Emulator(api_key="right-key-0123") as emu,
        traced_client(emu.base_url, api_key="wrong-key-4567") as (spark, log),
    ):
        with pytest.raises(sdk.UnauthorizedError, match="invalid API key"):
            await drain(spark.batches.stream_outputs(SERVICE, [{"n": 1}]))
    assert log.requests[0][0] == "POST"  # the create was refused...
    assert len(log.requests) == 1  # ...and nothing else was tried


@pytest.mark.parametrize("token", ["bearer-7f3a9c", "Bearer.7f3a9c", "BEARER:7f3a9c"])
async def test_a_token_that_starts_with_the_word_bearer_is_sent_intact(token: str) -> None:
    async with (
        Emulator(token=token) as emu,
        traced_client(emu.base_url, token=token) as (spark, log),
    ):
        await spark.batches.describe()
    assert log.requests[0][2]["Authorization"] == f"Bearer {token}"


# ---- 10. what a server (or a proxy in front of it) answers -------------------------------------
# tests/client/test_request_shapes.py covers HTML, truncated and empty 200 bodies and a 502 HTML
# page with aioresponses; these run over real loopback HTTP, through every layer.

Respond = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer(status: int, body: str | bytes, content_type: str = "text/html") -> Respond:
    async def handler(_request: web.Request) -> web.StreamResponse:
        data = body.encode() if isinstance(body, str) else body
        return web.Response(status=status, body=data, content_type=content_type)

    return handler


async def cut_short(request: web.Request) -> web.StreamResponse:
    """Promises 1000 bytes of JSON, sends 24, and hangs up."""
    response = web.StreamResponse(
        headers={"Content-Type": "application/json", "Content-Length": "1000"}
    )
    await response.prepare(request)
    await response.write(b'{"batch_status": "in_pro')
    assert request.transport is not None
    request.transport.close()
    return response


PROXY_LOGIN = "<html><head><title>Sign in - Corporate Proxy</title></head><body>...</body></html>"
PROXY_DENIED = "<html><body><h1>403 Forbidden</h1><p>Access denied by proxy policy</p></body>"
PROXY_DOWN = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
NGINX_413 = "<html><head><title>413 Request Entity Too Large</title></head></html>"

Call = Callable[[AsyncClient], Awaitable[Any]]


def describe(spark: AsyncClient) -> Awaitable[Any]:
    return spark.batches.describe()


def create(spark: AsyncClient) -> Awaitable[Any]:
    return spark.batches.create(SERVICE)


def push(spark: AsyncClient) -> Awaitable[Any]:
    return spark.batches.of("b1").push(inputs=[{"n": 1}])


@pytest.mark.parametrize(
    ("handler", "call", "error_class", "fragments", "attempts"),
    [
        pytest.param(
            answer(200, "OK", "text/plain"),
            describe,
            sdk.InvalidResponseError,
            ["200 InvalidResponseError", "expected JSON", "a body that is not JSON (text/plain"],
            1,
            id="plain-text-200",
        ),
        pytest.param(
            answer(200, b"", "application/json"),
            describe,
            sdk.InvalidResponseError,
            ["expected JSON, got an empty body"],
            1,
            id="empty-200",
        ),
        pytest.param(
            answer(200, '{"id": "b1", "data": {"sta', "application/json"),
            create,
            sdk.InvalidResponseError,
            ["expected JSON", "(application/json)"],
            1,
            id="truncated-json-200",
        ),
        pytest.param(
            cut_short,
            describe,
            sdk.SparkConnectionError,
            ["Response payload is not completed", "attempt 3"],
            3,
            id="body-cut-short",
        ),
        pytest.param(
            answer(200, PROXY_LOGIN),
            describe,
            sdk.InvalidResponseError,
            ["expected JSON", "(text/html"],
            1,
            id="proxy-login-page-200",
        ),
        pytest.param(
            answer(403, PROXY_DENIED),
            create,
            sdk.ForbiddenError,
            ["403 ForbiddenError: POST", "Access denied by proxy policy"],
            1,
            id="proxy-403-html",
        ),
        pytest.param(
            answer(503, PROXY_DOWN),
            describe,
            sdk.ServiceUnavailableError,
            ["503 Service Temporarily Unavailable", "after 3 attempts"],
            3,
            id="proxy-503-html-retried",
        ),
        pytest.param(
            answer(413, NGINX_413),
            push,
            sdk.PayloadTooLargeError,
            ["413 PayloadTooLargeError: POST", "413 Request Entity Too Large"],
            1,
            id="proxy-413-html-not-retried",
        ),
        pytest.param(
            answer(500, "<html>" + "<p>stack trace</p>" * 2000 + "</html>"),
            describe,
            sdk.InternalServerError,
            ["500 InternalServerError", "..."],
            3,
            id="huge-html-500-excerpted",
        ),
    ],
)
async def test_unusable_server_replies(
    handler: Respond,
    call: Call,
    error_class: type[sdk.SparkError],
    fragments: list[str],
    attempts: int,
) -> None:
    async with loopback(handler) as server, traced_client(server.base_url()) as (spark, _log):
        with pytest.raises(error_class) as info:
            await call(spark)
    error = info.value
    message = str(error)
    for fragment in fragments:
        assert fragment in message
    assert len(message) < 600  # an excerpt, never a whole page
    assert len(server.received) == attempts
    assert getattr(error, "attempts", None) == attempts


async def test_a_redirect_says_where_it_points() -> None:
    async def to_login(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("https://login.example.com/sso?next=/tenant")

    async with loopback(to_login) as server, traced_client(server.base_url()) as (spark, _log):
        with pytest.raises(sdk.UnknownApiError) as info:
            await spark.batches.describe()
    error = info.value
    assert error.status == 302
    assert len(server.received) == 1  # reported, not followed, not retried
    assert error.headers["Location"] == "https://login.example.com/sso?next=/tenant"


async def test_a_redirect_message_names_the_location() -> None:
    async def to_https(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently("https://excel.example.com/tenant/api/v4/batch/status")

    async with loopback(to_https) as server, traced_client(server.base_url()) as (spark, _log):
        with pytest.raises(sdk.UnknownApiError) as info:
            await spark.batches.describe()
    message = str(info.value)
    assert "redirect" in message.lower()
    assert "https://excel.example.com/tenant" in message


class FakeSpark:
    """Just enough of the Batch API for a stream, with one endpoint answering `broken`."""

    def __init__(self, broken: str, reply: Respond) -> None:
        self.broken = broken
        self.reply = reply

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        endpoint = (
            "create"
            if request.method == "POST" and path.endswith("/batch")
            else "push"
            if path.endswith("/chunks")
            else "pull"
            if path.endswith("/chunkresults")
            else "patch"
            if request.method == "PATCH"
            else "info"
        )
        if endpoint == self.broken:
            return await self.reply(request)
        if endpoint == "create":
            return web.json_response({"object": "batch", "id": "b1", "data": {}})
        if endpoint == "push":
            return web.json_response({"batch_status": "in_progress"})
        if endpoint == "pull":
            return web.json_response({"data": [], "status": {"batch_status": "in_progress"}})
        return web.json_response(
            {"object": "batch", "id": "b1", "data": {"batch_status": "cancelled"}}
        )


@pytest.mark.parametrize(
    ("broken", "reply", "error_class", "fragment"),
    [
        pytest.param(
            "push",
            answer(200, PROXY_LOGIN),
            sdk.InvalidResponseError,
            "expected JSON",
            id="push-answered-by-a-login-page",
        ),
        pytest.param(
            "pull",
            answer(200, orjson.dumps({"data": "none", "status": {}}), "application/json"),
            sdk.StreamError,  # an unreadable pull is a lost answer: retried, then this
            "'data' is not a list of chunk results",
            id="pull-data-not-a-list",
        ),
        pytest.param(
            "pull",
            answer(200, b"[]", "application/json"),
            sdk.StreamError,
            "expected {data, status}, got list",
            id="pull-answer-not-an-object",
        ),
        pytest.param(
            "create",
            answer(200, b'{"object": "batch"}', "application/json"),
            sdk.InvalidResponseError,
            "id",
            id="create-answer-without-an-id",
        ),
    ],
)
async def test_unusable_replies_end_a_stream_with_a_clear_error(
    broken: str, reply: Respond, error_class: type[sdk.SparkError], fragment: str
) -> None:
    server: Loopback
    async with (
        loopback(FakeSpark(broken, reply)) as server,
        traced_client(server.base_url()) as (spark, _log),
    ):
        with pytest.raises(error_class) as info:
            await drain(
                spark.batches.stream_outputs(
                    SERVICE, [{"n": 1}], max_in_flight=2, max_chunk_bytes=4096
                )
            )
    assert fragment in str(info.value)
    sent = [r.method for r in server.received]
    assert sent.count("POST") <= 2  # one create, at most one push: never retried in a loop
