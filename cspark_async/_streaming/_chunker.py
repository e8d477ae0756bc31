"""Records -> chunks. Reads any iterable lazily, validates and encodes each record once, and cuts
chunks by record count and by bytes so that none can exceed the pipeline's input buffer.

Pure apart from reading the caller's (async) iterable; no I/O of its own.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from itertools import islice
from typing import Any, Final

from attrs import frozen

from .._exceptions import SparkSdkError
from .._records import RecordReader, check_header, encode_many, encode_option, frame_chunk

__all__ = [
    "Chunk",
    "Chunker",
    "RecordError",
    "Records",
    "check_records",
    "close_async_iterator",
]

Records = Iterable[Any] | AsyncIterable[Any]

# {"id":"","size":,"data":{"inputs":[],"parameters":,"summary":}} plus digits: a safe upper bound.
_ENVELOPE_BYTES: Final = 96


@frozen(slots=True)
class Chunk:
    """One chunk as pushed: its place in the stream, its records, and its wire form."""

    seq: int  # 0, 1, 2... in input order
    id: str  # stable across retries: the server's echo of it is how results are matched
    offset: int  # index of the chunk's first record in the input stream
    inputs: Sequence[Any]  # the records as the caller gave them (rows or dicts)
    header: tuple[str, ...] | None  # JSON-array form: the column names
    body: bytes  # the chunk object, serialised once: `{"id", "size", "data": {...}}`
    # The inputs are tuples copied from the caller's lists: the collector stops tracking a
    # tuple of plain values, so rows in flight cost no full-collection time (a window of list
    # copies added 4-6 ms to a 20 ms pass). Results hand them back as lists.
    rows_as_tuples: bool = False

    @property
    def records(self) -> int:
        return len(self.inputs)

    @property
    def nbytes(self) -> int:
        return len(self.body)


class Chunker:
    """Cuts a record stream into chunks of at most `chunk_size` records and `max_chunk_bytes`.

    Records are dicts (object form) or rows (lists/tuples) after a header row; with `headers=`
    every record is a row (the rules are `_records.RecordReader`'s). The caller's data is never
    modified.
    """

    def __init__(
        self,
        *,
        chunk_size: int,
        max_chunk_bytes: int,
        headers: Sequence[str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        summary: Mapping[str, Any] | None = None,
        id_prefix: str | None = None,
        max_record_bytes: int | None = None,
    ) -> None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise SparkSdkError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        if isinstance(max_chunk_bytes, bool) or not isinstance(max_chunk_bytes, int):
            raise SparkSdkError(f"max_chunk_bytes must be an integer, got {max_chunk_bytes!r}")
        self.headers = None if headers is None else check_header(headers, "headers")
        self.chunk_size = chunk_size
        self._batch_size = chunk_size  # records read per cut: fewer when records are large
        self.max_chunk_bytes = max_chunk_bytes
        # A record over the chunk cap still goes, alone, if it fits this (the input buffer).
        self.max_record_bytes = max(max_chunk_bytes, max_record_bytes or 0)
        self._parameters = encode_option(parameters, "parameters") or b"{}"
        self._summary = encode_option(summary, "summary") or b"null"
        self._prefix = id_prefix or secrets.token_hex(4)
        # Reading fewer records at a time when they are large depends on what came before; a
        # resumable stream (its ids given) must cut the same chunks from any resume point.
        self._adaptive = id_prefix is None
        self._fixed = _ENVELOPE_BYTES + len(self._parameters) + len(self._summary)
        if max_chunk_bytes < self._fixed + 2:
            raise SparkSdkError(
                f"max_chunk_bytes={max_chunk_bytes} leaves no room for a record next to "
                "the chunk's parameters and summary"
            )

    async def chunks(
        self, records: Records, *, seq: int = 0, offset: int = 0, skip: int = 0
    ) -> AsyncGenerator[Chunk, None]:
        """Yield chunks as records are read; at most one chunk's records are held here.

        Each record is copied (one level deep) as it is taken: a source that reuses one dict
        or list for every row still sends, and gets back, each row as it was when read. A list
        or tuple of records is the exception: its records are the caller's own objects, never
        reused, and come back as they are.

        A resumed stream starts at chunk `seq` and record `offset` (where a chunk_size group
        began): `skip` records are first read past (a header row still counts as one), or
        the source already starts there (`skip=0`).

        Raises:
            RecordError: a record that cannot be sent, with its offset.
        """
        reader = RecordReader(self.headers)
        batch: list[Any] = []
        if type(records) is list or type(records) is tuple:
            # Read a chunk at a time, checked and copied in bulk: iterating a list runs no code
            # of the caller's, so nothing can change a record between reading and copying it
            # (a generator may reuse one object: it is read one record at a time below).
            self._batch_size = self._first_batch_size(records)
            iterator = iter(records)
            if skip:
                _skip_in_bulk(reader, iterator, skip)
            async for chunk in self._chunks_in_bulk(reader, iterator, seq, offset):
                yield chunk
            return
        source = _aiter(records)
        if skip:
            await _skip(reader, source, skip)
        as_tuples: bool | None = None  # a batch of list rows is copied into tuples
        async for record in source:
            try:
                if not reader.check(record):
                    continue  # the header row
            except SparkSdkError as exc:
                raise RecordError(exc.message, offset=reader.count) from None
            if as_tuples is None:
                as_tuples = type(record) is list
            if as_tuples and type(record) is list:
                batch.append(tuple(record))
            else:
                if as_tuples:  # a row of another type: its batch goes back to lists
                    batch, as_tuples = list(map(list, batch)), False
                batch.append(_copy(record))
            if len(batch) >= self._batch_size:
                for chunk in self._cut(reader, batch, seq, offset, bool(as_tuples)):
                    yield chunk
                    seq += 1
                offset += len(batch)
                batch, as_tuples = [], None
        if batch:
            for chunk in self._cut(reader, batch, seq, offset, bool(as_tuples)):
                yield chunk

    def _first_batch_size(self, records: Sequence[Any]) -> int:
        """`chunk_size`, or fewer when the first records say that many would not fit in a
        chunk: then each chunk is encoded once, and no oversized batch is encoded (and cut
        record by record) on the event loop. The median of a few records, so that one large
        record does not shrink every chunk."""
        if not self._adaptive:
            return self.chunk_size
        sizes = sorted(len(encode_many(records[i : i + 1]) or b"") for i in range(1, 10))
        sizes = [size for size in sizes if size] if len(records) > 1 else []
        if not sizes:
            return self.chunk_size
        room = self.max_chunk_bytes - self._fixed - len(encode_many(records[:1]) or b"")
        return self._fitting(room, sizes[len(sizes) // 2])

    def _fitting(self, room: int, record_bytes: int) -> int:
        """How many records of `record_bytes` fill about 90% of `room` (at most chunk_size)."""
        return max(1, min(self.chunk_size, int(0.9 * room / (record_bytes + 1))))

    async def _chunks_in_bulk(
        self, reader: RecordReader, records: Iterator[Any], seq: int, offset: int
    ) -> AsyncGenerator[Chunk, None]:
        """`chunks()` for a list or tuple: `chunk_size` records at a time from it, checked with
        one call each when they share a type (one at a time otherwise, the header row included,
        for the exact message)."""
        batch: list[Any] = []
        while True:
            wanted = self._batch_size - len(batch)
            piece = list(islice(records, wanted))
            if reader.check_many(piece):
                # Not copied: a list's records are the caller's own objects, which nothing
                # reuses for the next record; copies would live until each result is handed
                # over, and the collector's full passes over them cost more than the stream.
                batch += piece
            else:
                for record in piece:
                    try:
                        if not reader.check(record):
                            continue  # the header row
                    except SparkSdkError as exc:
                        raise RecordError(exc.message, offset=reader.count) from None
                    batch.append(record)
            if len(batch) >= self._batch_size or (batch and len(piece) < wanted):
                for chunk in self._cut(reader, batch, seq, offset):
                    yield chunk
                    seq += 1
                offset += len(batch)
                batch = []
            if len(piece) < wanted:
                return  # the iterable is exhausted

    def _cut(
        self, reader: RecordReader, batch: list[Any], seq: int, offset: int, tuples: bool = False
    ) -> list[Chunk]:
        """One chunk of `batch`, or several when its JSON is over the byte cap. `tuples`: the
        batch's rows are tuples standing in for the caller's lists."""
        header, header_json = reader.header, reader.header_json
        limit = self.max_chunk_bytes - self._fixed - len(header_json or b"")
        encoded = encode_many(batch)
        if encoded is not None and len(encoded) <= limit:
            # The usual case: one orjson call for the whole chunk, not one per record.
            parts = [encoded[1:-1]]
            if self._adaptive and len(encoded) < limit // 2:  # small again: read more at once
                self._batch_size = min(self.chunk_size, 2 * self._batch_size)
            return [self._chunk(seq, offset, batch, parts, header, header_json, tuples)]
        chunks: list[Chunk] = []
        start, parts, size = 0, [], 0
        record_limit = limit + self.max_record_bytes - self.max_chunk_bytes
        sizes: list[int] = []
        for i, record in enumerate(batch):
            try:
                data = reader.encode(record, offset + i)  # names the record that cannot be sent
            except SparkSdkError as exc:
                raise RecordError(exc.message, offset=offset + i) from None
            if len(data) + 1 > record_limit:
                raise RecordError(
                    f"record at offset {offset + i} takes {len(data)} bytes of JSON; a chunk "
                    f"may take at most {self.max_record_bytes} bytes (the pipeline's input "
                    "buffer limits it): shrink the record or raise the pipeline's max_input_size",
                    offset=offset + i,
                )
            if parts and (size + len(data) + 1 > limit or len(data) + 1 > limit):
                chunks.append(
                    self._chunk(
                        seq + len(chunks),
                        offset + start,
                        batch[start:i],
                        parts,
                        header,
                        header_json,
                        tuples,
                    )
                )
                start, parts, size = i, [], 0
            parts.append(data)
            sizes.append(len(data))
            size += len(data) + 1
            if size > limit and i + 1 < len(batch):  # an oversized record goes alone
                chunks.append(
                    self._chunk(
                        seq + len(chunks),
                        offset + start,
                        batch[start : i + 1],
                        parts,
                        header,
                        header_json,
                        tuples,
                    )
                )
                start, parts, size = i + 1, [], 0
        chunks.append(
            self._chunk(
                seq + len(chunks), offset + start, batch[start:], parts, header, header_json, tuples
            )
        )
        # Records this large: read about as many as fit at a time from now on, so that each
        # chunk is encoded once, and never a whole oversized batch on the event loop.
        if self._adaptive:
            sizes.sort()
            self._batch_size = self._fitting(limit, sizes[len(sizes) // 2])
        return chunks

    def _chunk(
        self,
        seq: int,
        offset: int,
        records: list[Any],
        parts: list[bytes],
        header: tuple[str, ...] | None,
        header_json: bytes | None,
        tuples: bool = False,
    ) -> Chunk:
        chunk_id = f"{self._prefix}-{seq}"
        rows = [header_json, *parts] if header_json is not None else parts
        body = frame_chunk(chunk_id, len(records), rows, self._parameters, self._summary)
        return Chunk(
            seq=seq,
            id=chunk_id,
            offset=offset,
            inputs=records,
            header=header,
            body=body,
            rows_as_tuples=tuples,
        )


def _skip_in_bulk(reader: RecordReader, records: Iterator[Any], count: int) -> None:
    """`_skip` for a list's iterator, in one step: its records were checked by the run that
    read them first, so only the first is looked at (it may be the header row)."""
    first = next(records, None)
    if first is None:
        return
    if reader.check(first):
        count -= 1
    deque(islice(records, count), maxlen=0)
    reader.count += count


async def _skip(reader: RecordReader, source: AsyncIterator[Any], count: int) -> None:
    """Read past `count` records (checked, so that a header row is still taken as one)."""
    skipped = 0
    while skipped < count:
        try:
            record = await anext(source)
        except StopAsyncIteration:
            return
        if reader.check(record):
            skipped += 1


class RecordError(SparkSdkError):
    """A record that cannot be sent; `offset` is its index in the input."""

    def __init__(self, message: str, *, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def _copy(record: Any) -> Any:
    # Types checked exactly: the common cases cost one C call; anything else keeps its type.
    kind = type(record)
    if kind is dict or kind is list:
        return kind(record)
    if isinstance(record, Mapping):
        return dict(record)
    if isinstance(record, list):
        return list(record)
    return record  # a tuple cannot be changed under us


def check_records(records: Any) -> None:
    """Refuse what cannot be a stream of records, before anything is sent."""
    if isinstance(records, AsyncIterable):
        return
    if not isinstance(records, Iterable) or isinstance(records, (str, bytes, Mapping)):
        raise SparkSdkError(
            "records must be an iterable or async iterable of records, "
            f"got {type(records).__name__}"
        )


async def _aiter(records: Records) -> AsyncIterator[Any]:
    check_records(records)
    if isinstance(records, AsyncIterable):
        iterator = aiter(records)
        try:
            async for record in iterator:
                yield record
        finally:
            await close_async_iterator(iterator)
    else:
        for record in records:
            yield record


async def close_async_iterator(iterator: Any) -> None:
    """Close an async generator we stopped reading (its `finally` runs now, in our task)."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
