"""create_chunks, ChunkData and BatchChunk, with regressions for the official SDK's bugs."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cspark_async import BatchChunk, ChunkData, SparkSdkError, create_chunks
from cspark_async._serde import chunks_from_raw, encode_chunk

HEADER = ["sale_id", "price", "quantity"]


def _rows(n: int) -> list[list[Any]]:
    return [[i, 10.0 * i, i % 3] for i in range(1, n + 1)]


def test_json_array_form_puts_the_header_on_every_chunk() -> None:
    chunks = create_chunks([HEADER, *_rows(5)], chunk_size=2)
    assert [c.size for c in chunks] == [2, 2, 1]
    for chunk in chunks:
        assert chunk.data.inputs[0] == HEADER
        assert chunk.data.record_count == chunk.size
    assert [row for c in chunks for row in c.data.inputs[1:]] == _rows(5)


def test_headers_argument_with_value_rows_only() -> None:
    chunks = create_chunks(_rows(3), headers=HEADER, chunk_size=2)
    assert [c.data.inputs for c in chunks] == [[HEADER, *_rows(2)], [HEADER, _rows(3)[2]]]
    assert [c.size for c in chunks] == [2, 1]


def test_bug2_caller_dataset_is_not_mutated() -> None:
    dataset = [HEADER, *_rows(4)]
    before = copy.deepcopy(dataset)
    create_chunks(dataset, chunk_size=2)
    create_chunks(dataset, chunk_size=3)
    assert dataset == before


def test_bug2_no_empty_trailing_chunk_when_rows_divide_evenly() -> None:
    chunks = create_chunks([HEADER, *_rows(4)], chunk_size=2)
    assert len(chunks) == 2  # the official SDK makes 3, the last holding only the header
    assert all(c.size == 2 for c in chunks)


@pytest.mark.parametrize(
    "dataset",
    [pytest.param([], id="empty"), pytest.param([HEADER], id="header-only")],
)
def test_no_records_gives_no_chunks(dataset: list[Any]) -> None:
    assert create_chunks(dataset) == []


def test_bug3_list_of_objects_is_not_read_as_a_header() -> None:
    records = [{"value": i} for i in range(5)]
    chunks = create_chunks(records, chunk_size=2)
    assert [c.data.inputs for c in chunks] == [records[0:2], records[2:4], records[4:5]]
    assert [c.size for c in chunks] == [2, 2, 1]


def test_seed_keyword_form_inputs() -> None:
    chunks = create_chunks(inputs=[{"value": 42}, {"value": 43}, {"value": 44}], chunk_size=2)
    assert [c.size for c in chunks] == [2, 1]
    assert chunks[1].data.inputs == [{"value": 44}]


def test_bug6_size_counts_records_not_the_header() -> None:
    chunk = create_chunks([["value"], [42], [43]])[0]
    assert chunk.size == 2
    assert orjson.loads(encode_chunk(chunk))["size"] == 2
    # The same rule when BatchChunk computes size itself.
    assert BatchChunk(id="a", data=ChunkData(inputs=[["value"], [42], [43]])).size == 2
    assert BatchChunk(id="b", data=ChunkData(inputs=[{"value": 42}])).size == 1


def test_ids_are_unique() -> None:
    chunks = create_chunks([{"v": i} for i in range(1000)], chunk_size=1)
    assert len({c.id for c in chunks}) == 1000


def test_bug17_parameters_and_summary_are_copied_per_chunk() -> None:
    parameters = {"common": {"rate": 40}}
    summary = {"ignore_error": False, "aggregation": [{"output_name": "total", "operator": "SUM"}]}
    chunks = create_chunks(
        [{"v": 1}, {"v": 2}], chunk_size=1, parameters=parameters, summary=summary
    )
    assert chunks[0].data.parameters == chunks[1].data.parameters == parameters
    assert chunks[0].data.parameters is not chunks[1].data.parameters
    assert chunks[0].data.summary is not chunks[1].data.summary
    chunks[0].data.parameters["common"]["rate"] = 99
    assert parameters["common"]["rate"] == 40
    assert chunks[1].data.parameters["common"]["rate"] == 40


def test_bug17_chunkdata_parameters_never_null_on_the_wire() -> None:
    chunk = BatchChunk(id="x", data=ChunkData(inputs=[{"v": 1}], parameters=None))  # type: ignore[arg-type]
    wire = orjson.loads(encode_chunk(chunk))
    assert wire == {"id": "x", "size": 1, "data": {"inputs": [{"v": 1}], "parameters": {}}}
    assert "summary" not in wire["data"]  # omitted, never null


def test_chunk_wire_form_round_trips_and_leaves_the_chunk_alone() -> None:
    data = ChunkData(inputs=[("v", "w"), [1, (2, 3)]], parameters={"p": 1}, summary={"s": True})
    wire = orjson.loads(encode_chunk(BatchChunk(id='x"y', data=data)))
    assert wire == {
        "id": 'x"y',
        "size": 1,
        "data": {
            "inputs": [["v", "w"], [1, [2, 3]]],
            "parameters": {"p": 1},
            "summary": {"s": True},
        },
    }
    assert data.inputs == [("v", "w"), [1, (2, 3)]]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(ChunkData(inputs=[["a", "b"], [1]]), "c1: row 0 has 1 values", id="ragged"),
        pytest.param(ChunkData(inputs=[{"a": 1}, [1]]), "c1: record 1 is a list", id="mixed"),
        pytest.param(
            ChunkData(inputs=[{"a": float("inf")}]),
            "c1: record 0 cannot be encoded as JSON: inf",
            id="infinity",
        ),
        pytest.param(
            ChunkData(inputs=[{"a": 1}], parameters={"r": float("nan")}),
            "c1: parameters cannot be encoded as JSON: nan",
            id="nan-parameter",
        ),
        pytest.param(
            ChunkData(inputs=[{"a": 1}], summary="SUM"),  # type: ignore[arg-type]
            "c1: summary must be a dict",
            id="summary-not-a-dict",
        ),
    ],
)
def test_encode_chunk_refuses_what_the_stream_refuses(data: ChunkData, message: str) -> None:
    with pytest.raises(SparkSdkError) as info:
        encode_chunk(BatchChunk(id="x", data=data), "c1")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({}, "needs a dataset", id="nothing"),
        pytest.param({"dataset": [{"a": 1}], "inputs": [{"a": 1}]}, "not both", id="both"),
        pytest.param({"dataset": [{"a": 1}], "chunk_size": 0}, "chunk_size", id="size-zero"),
        pytest.param({"dataset": [{"a": 1}], "chunk_size": -5}, "chunk_size", id="negative"),
        pytest.param({"dataset": [{"a": 1}], "chunk_size": True}, "chunk_size", id="bool"),
        pytest.param({"dataset": "abc"}, "list of rows", id="string"),
        pytest.param({"dataset": {"a": 1}}, "list of rows", id="mapping"),
        pytest.param({"dataset": [["a", "b"], [1]]}, "row 0 has 1 values", id="ragged"),
        pytest.param({"dataset": [["a", 1], [1, 2]]}, "header row", id="bad-header"),
        pytest.param({"dataset": [[], [1]]}, "header row", id="empty-header"),
        pytest.param(
            {"dataset": [{"a": 1}, [1]]},
            "record 1 is a list, but the dataset started with dicts",
            id="mixed",
        ),
        pytest.param(
            {"dataset": [{"a": 1}], "headers": ["a"]},
            "row 0 is a dict, but the dataset has a header row",
            id="hdr+obj",
        ),
        pytest.param({"dataset": [1, 2]}, "record 0 must be a dict, or a header row", id="scalars"),
    ],
)
def test_invalid_arguments_raise_sdk_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SparkSdkError, match=message):
        create_chunks(**kwargs)


def test_generators_are_accepted() -> None:
    chunks = create_chunks(({"v": i} for i in range(3)), chunk_size=2)
    assert [c.size for c in chunks] == [2, 1]


def test_raw_bodies_parse_to_chunks() -> None:
    raw = '{"chunks": [{"id": "", "data": {"inputs": [["v"], [1], [2]], "parameters": null}}]}'
    (chunk,) = chunks_from_raw(raw)
    assert chunk.id == ""
    assert chunk.size == 2
    assert chunk.data.parameters == {}
    (bare,) = chunks_from_raw(b'[{"id": "a", "size": 7, "data": {"inputs": [{"v": 1}]}}]')
    assert bare.id == "a"
    assert bare.size == 7


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("not json", id="not-json"),
        pytest.param('{"data": []}', id="no-chunks-key"),
        pytest.param('[{"id": "a"}]', id="no-data"),
        pytest.param('[{"id": "a", "data": {"inputs": {}}}]', id="inputs-not-array"),
        pytest.param('[{"id": "a", "data": {"inputs": [], "parameters": []}}]', id="bad-params"),
        pytest.param("[1]", id="chunk-not-object"),
    ],
)
def test_bad_raw_bodies_raise_sdk_errors(raw: str) -> None:
    with pytest.raises(SparkSdkError):
        chunks_from_raw(raw)


@given(
    n=st.integers(min_value=0, max_value=60),
    chunk_size=st.integers(min_value=1, max_value=25),
    array_form=st.booleans(),
)
def test_partition_properties(n: int, chunk_size: int, array_form: bool) -> None:
    rows: list[Any] = _rows(n) if array_form else [{"i": i} for i in range(n)]
    dataset = [HEADER, *rows] if array_form else rows
    chunks = create_chunks(dataset, chunk_size=chunk_size)
    assert len(chunks) == -(-n // chunk_size)  # ceil, and 0 for no rows
    assert all(1 <= c.size <= chunk_size for c in chunks)
    assert sum(c.size for c in chunks) == n
    flat = [r for c in chunks for r in (c.data.inputs[1:] if array_form else c.data.inputs)]
    assert flat == rows
