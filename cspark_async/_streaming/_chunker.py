"""Records -> chunks. Reads any iterable lazily, validates and encodes each record once, and cuts
chunks by record count and by bytes so that none can exceed the pipeline's input buffer.

Pure apart from reading the caller's (async) iterable; no I/O of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Final

from attrs import frozen

from .._exceptions import SparkSdkError
from .._records import RecordReader, check_header, encode_option, frame_chunk

__all__ = ["Chunk", "Chunker", "Records", "check_records"]

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
    ) -> None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise SparkSdkError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        if isinstance(max_chunk_bytes, bool) or not isinstance(max_chunk_bytes, int):
            raise SparkSdkError(f"max_chunk_bytes must be an integer, got {max_chunk_bytes!r}")
        self.headers = None if headers is None else check_header(headers, "headers")
        self.chunk_size = chunk_size
        self.max_chunk_bytes = max_chunk_bytes
        self._parameters = encode_option(parameters, "parameters") or b"{}"
        self._summary = encode_option(summary, "summary") or b"null"
        self._prefix = id_prefix or secrets.token_hex(4)
        if max_chunk_bytes < _ENVELOPE_BYTES + len(self._parameters) + len(self._summary) + 2:
            raise SparkSdkError(
                f"max_chunk_bytes={max_chunk_bytes} leaves no room for a record next to "
                "the chunk's parameters and summary"
            )

    async def chunks(self, records: Records) -> AsyncIterator[Chunk]:
        """Yield chunks as records are read; at most one chunk's records are held here."""
        reader = RecordReader(self.headers)
        seq = offset = 0
        batch: list[Any] = []
        parts: list[bytes] = []
        size = 0
        fixed = _ENVELOPE_BYTES + len(self._parameters) + len(self._summary)
        async for record in _aiter(records):
            encoded = reader.read(record)
            if encoded is None:
                continue  # the header row
            header, header_bytes = reader.header, reader.header_json or b""
            record_offset = offset + len(batch)
            limit = self.max_chunk_bytes - fixed - len(header_bytes)
            if len(encoded) + 1 > limit:
                raise SparkSdkError(
                    f"record at offset {record_offset} takes {len(encoded)} bytes of JSON; a chunk "
                    f"may take at most {self.max_chunk_bytes} bytes (the pipeline's input buffer "
                    "limits it): shrink the record or raise the pipeline's max_input_size"
                )
            if batch and (len(batch) >= self.chunk_size or size + len(encoded) + 1 > limit):
                yield self._chunk(seq, offset, batch, parts, header, header_bytes)
                seq += 1
                offset += len(batch)
                batch, parts, size = [], [], 0
            batch.append(record)
            parts.append(encoded)
            size += len(encoded) + 1
        if batch:
            yield self._chunk(seq, offset, batch, parts, header, header_bytes)

    def _chunk(
        self,
        seq: int,
        offset: int,
        records: list[Any],
        parts: list[bytes],
        header: tuple[str, ...] | None,
        header_bytes: bytes,
    ) -> Chunk:
        chunk_id = f"{self._prefix}-{seq}"
        rows = [header_bytes, *parts] if header is not None else parts
        body = frame_chunk(chunk_id, len(records), rows, self._parameters, self._summary)
        return Chunk(seq=seq, id=chunk_id, offset=offset, inputs=records, header=header, body=body)


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
        async for record in records:
            yield record
    else:
        for record in records:
            yield record
