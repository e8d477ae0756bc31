"""Pure parts of the streaming engine: chunker, reorder buffer, in-flight window."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cspark_async._exceptions import SparkSdkError
from cspark_async._streaming._chunker import Chunk, Chunker
from cspark_async._streaming._engine import _balanced_chunk_size
from cspark_async._streaming._ordering import ReorderBuffer
from cspark_async._streaming._window import Window
from cspark_async.emulator._chunks import parse_push_body


async def collect(chunker: Chunker, records: Any) -> list[Chunk]:
    return [c async for c in chunker.chunks(records)]


def run(coro: Any) -> Any:
    return anyio.run(lambda: coro)


scalars = st.one_of(
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.booleans(),
    st.none(),
)


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(
        st.dictionaries(st.text(min_size=1, max_size=5), scalars, max_size=4), max_size=60
    ),
    chunk_size=st.integers(1, 12),
    max_bytes=st.integers(400, 2_000),
)
def test_chunks_cover_every_record_once_in_order_within_the_byte_cap(
    records: list[dict[str, Any]], chunk_size: int, max_bytes: int
) -> None:
    chunker = Chunker(chunk_size=chunk_size, max_chunk_bytes=max_bytes, parameters={"p": 1})
    chunks = run(collect(chunker, records))
    assert [r for c in chunks for r in c.inputs] == records
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert len({c.id for c in chunks}) == len(chunks)
    offset = 0
    for c in chunks:
        assert c.offset == offset
        offset += c.records
        assert 1 <= c.records <= chunk_size
        assert c.nbytes <= max_bytes
        # The emulator parses it, and counts exactly the bytes this side counted.
        (parsed,) = parse_push_body({"chunks": [orjson.loads(c.body)]})
        assert parsed.nbytes == c.nbytes
        assert parsed.rows == list(c.inputs)
        assert parsed.parameters == {"p": 1}


async def test_header_row_form_and_headers_argument() -> None:
    rows = [["a", "b"], [1, 2], [3, 4], [5, 6]]
    chunks = await collect(Chunker(chunk_size=2, max_chunk_bytes=10_000), rows)
    assert [c.inputs for c in chunks] == [[[1, 2], [3, 4]], [[5, 6]]]
    assert [c.offset for c in chunks] == [0, 2]
    assert orjson.loads(chunks[1].body)["data"]["inputs"] == [["a", "b"], [5, 6]]
    assert rows == [["a", "b"], [1, 2], [3, 4], [5, 6]]  # never mutated
    with_headers = await collect(
        Chunker(chunk_size=5, max_chunk_bytes=10_000, headers=["a", "b"]), rows[1:]
    )
    assert orjson.loads(with_headers[0].body)["data"]["inputs"] == rows
    assert orjson.loads(with_headers[0].body)["size"] == 3


async def test_list_rows_from_an_iterator_travel_as_tuples_the_collector_skips() -> None:
    import gc

    def rows() -> Any:
        row = ["a", "b"]
        yield row
        for i in range(5):
            row[:] = [i, "x"]  # one list reused: each record is copied as read
            yield row

    chunks = await collect(Chunker(chunk_size=2, max_chunk_bytes=10_000), rows())
    assert [c.inputs for c in chunks] == [[(0, "x"), (1, "x")], [(2, "x"), (3, "x")], [(4, "x")]]
    assert all(c.rows_as_tuples for c in chunks)
    gc.collect()
    assert not any(gc.is_tracked(row) for c in chunks for row in c.inputs)
    # A batch that mixes lists with other rows keeps each row's own type.
    mixed = await collect(
        Chunker(chunk_size=3, max_chunk_bytes=10_000), iter([["a"], [1], (2,), [3]])
    )
    assert [c.inputs for c in mixed] == [[[1], (2,), [3]]]
    assert not mixed[0].rows_as_tuples


async def test_async_iterables_are_read_lazily() -> None:
    produced = 0

    async def source() -> AsyncIterator[dict[str, int]]:
        nonlocal produced
        for i in range(100):
            produced += 1
            yield {"i": i}

    seen = []
    async for c in Chunker(chunk_size=10, max_chunk_bytes=10_000).chunks(source()):
        seen.append(c)
        if len(seen) == 2:
            break
    assert produced <= 21  # two chunks' records plus the one that closed the second


async def test_empty_input_gives_no_chunk() -> None:
    assert await collect(Chunker(chunk_size=3, max_chunk_bytes=10_000), []) == []
    assert await collect(Chunker(chunk_size=3, max_chunk_bytes=10_000), [["h"]]) == []


@pytest.mark.parametrize(
    ("records", "options", "message"),
    [
        ([{"a": 1}, [1]], {}, "record at offset 1 is a list"),
        ([["a"], [1], {"a": 2}], {}, "record at offset 1 is a dict"),
        ([["a", "b"], [1, 2], [3]], {}, "record at offset 1 has 1 values but the header names 2"),
        ([5], {}, "record at offset 0 must be a dict"),
        ([[1, 2], [3, 4]], {}, "header row"),
        ([["a", "a"], [1, 2]], {}, "names a column twice"),
        ([{"a": 1}, {"a": math.nan}], {}, "record at offset 1 cannot be encoded as JSON: nan"),
        ([{"a": [1, {"b": math.inf}]}], {}, "offset 0 cannot be encoded as JSON: inf"),
        ([{"a": {1, 2}}], {}, "offset 0 cannot be encoded"),
        ([{"a": b"x"}], {}, "offset 0 cannot be encoded"),
        (
            [{"a": dt.datetime(2026, 1, 1)}],
            {},
            "datetime.datetime; convert it first (.isoformat() for dates",
        ),
        ([{"a": "x" * 500}], {"max_chunk_bytes": 300}, "record at offset 0 takes 508 bytes"),
        ("abc", {}, "records must be an iterable"),
        ({"a": 1}, {}, "records must be an iterable"),
    ],
)
async def test_bad_records_name_their_offset(
    records: Any, options: dict[str, Any], message: str
) -> None:
    chunker = Chunker(chunk_size=10, max_chunk_bytes=options.get("max_chunk_bytes", 10_000))
    with pytest.raises(SparkSdkError) as info:
        await collect(chunker, records)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chunk_size": 0}, "chunk_size must be a positive integer"),
        ({"chunk_size": True}, "chunk_size"),
        ({"chunk_size": 2.5}, "chunk_size"),
        ({"max_chunk_bytes": 10}, "leaves no room"),
        ({"headers": "abc"}, "headers must be a list"),
        ({"headers": []}, "headers is empty"),
        ({"parameters": [1]}, "parameters must be a dict"),
        ({"parameters": {"x": math.nan}}, "parameters cannot be encoded"),
        ({"summary": {"x": object()}}, "summary cannot be encoded"),
    ],
)
def test_bad_options_are_refused_up_front(options: dict[str, Any], message: str) -> None:
    kwargs: dict[str, Any] = {"chunk_size": 5, "max_chunk_bytes": 10_000, **options}
    with pytest.raises(SparkSdkError, match=message):
        Chunker(**kwargs)


@settings(max_examples=50, deadline=None)
@given(st.permutations(list(range(30))))
def test_reorder_buffer_releases_in_order_whatever_the_arrival(order: list[int]) -> None:
    buffer: ReorderBuffer[int] = ReorderBuffer()
    released = []
    for seq in order:
        released.extend(buffer.add(seq, seq))
        assert len(buffer) + len(released) == len(released) + len(buffer)
    assert released == list(range(30))
    assert len(buffer) == 0
    with pytest.raises(ValueError, match="already"):
        buffer.add(3, 3)


async def test_window_halves_on_throttle_and_grows_back() -> None:
    window = Window(8)
    assert window.limit == 8
    window.throttle(0.0)
    assert window.limit == 4
    window.throttle(0.0)
    window.throttle(0.0)
    window.throttle(0.0)
    assert window.limit == 1
    for _ in range(20):
        window.grow()
    assert window.limit == 8


async def test_window_pause_is_shared_and_blocks_acquire_beyond_the_limit() -> None:
    window = Window(2)
    a, b, c = object(), object(), object()
    await window.acquire(a)
    await window.acquire(b)
    with anyio.move_on_after(0.05) as scope:
        await window.acquire(c)
    assert scope.cancelled_caught
    window.release(a)
    await window.acquire(c)
    window.throttle(0.1)
    started = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(window.wait_until_open)
    assert 0.08 <= anyio.current_time() - started < 0.5


def test_window_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Window(0)


def test_shuffled_completion_keeps_order() -> None:
    rng = random.Random(5)
    seqs = list(range(200))
    rng.shuffle(seqs)
    buffer: ReorderBuffer[str] = ReorderBuffer()
    out = [item for s in seqs for item in buffer.add(s, f"r{s}")]
    assert out == [f"r{i}" for i in range(200)]


@pytest.mark.parametrize(
    ("total", "workers", "expected"),
    [
        (None, 16, 200),  # unknown length: the default
        (20_000, 16, 179),  # 7 even waves of 16 chunks, not 6 full waves and a ragged 7th
        (3200, 16, 200),  # already even
        (10, 16, 1),  # fewer records than workers: one record a chunk
        (200_000, 16, 199),
    ],
)
def test_balanced_chunk_size_evens_out_the_last_wave(
    total: int | None, workers: int, expected: int
) -> None:
    size = _balanced_chunk_size(total, workers)
    assert size == expected
    if total:
        chunks = math.ceil(total / size)
        waves = math.ceil(chunks / workers)
        assert chunks > (waves - 1) * workers  # the last wave is not a few stragglers
        assert size <= 200


def test_window_never_throttles_below_its_floor() -> None:
    window = Window(34, floor=16)
    for _ in range(10):
        window.throttle(0.0)
    assert window.limit == 16


async def test_a_record_over_the_chunk_cap_goes_alone_when_it_fits_the_buffer() -> None:
    chunker = Chunker(chunk_size=10, max_chunk_bytes=400, max_record_bytes=2000)
    records = [{"n": 0}, {"big": "x" * 1000}, {"n": 2}, {"n": 3}]
    chunks = await collect(chunker, records)
    assert [list(c.inputs) for c in chunks] == [[{"n": 0}], [records[1]], [{"n": 2}, {"n": 3}]]
    assert [c.offset for c in chunks] == [0, 1, 2]
    assert chunks[1].nbytes <= 2000
    with pytest.raises(SparkSdkError, match="record at offset 1 takes 3010 bytes"):
        await collect(chunker, [{"n": 0}, {"big": "x" * 3000}])


def test_one_walk_finds_a_nan_in_a_batch_with_nulls() -> None:
    from cspark_async._records import encode_many

    assert encode_many([{"a": None}, {"a": 1.5}]) == b'[{"a":null},{"a":1.5}]'
    assert encode_many([{"a": None}, {"a": math.nan}]) is None  # the caller names the record
    from collections import OrderedDict

    assert encode_many([{"a": OrderedDict(x=math.inf)}]) is None
