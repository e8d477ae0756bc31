"""Checkpoints: what a restarted process needs to resume a stream where the last one stopped.

A checkpoint names the job (service, the options that decide chunk boundaries, a fingerprint of
the input), the chunking it settled on (so a resume cuts the same chunks under the same ids),
the batch, and the committed position: every chunk below a watermark, plus finished chunks
above it (results handed over out of order). A result is committed once the consumer asks for
the next one or calls `commit()`. The consumer's own `meta` (e.g. its output's length) is saved
with the position it belongs to, so the two can never disagree.

`CheckpointStore` is the storage protocol (three coroutines on JSON-able dicts); `FileCheckpoint`
ships. `Checkpointer` keeps the books of one stream and saves them from one writer task:
commits are cheap, and a save always writes the newest position (older ones are skipped).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import anyio
import orjson
from attrs import frozen

from .._exceptions import NotFoundError, SparkSdkError
from ._chunker import Chunk, Records
from ._options import StreamOptions

__all__ = [
    "CheckpointError",
    "CheckpointStore",
    "Checkpointer",
    "Chunking",
    "FileCheckpoint",
    "SeekableRecords",
    "checkpointer",
]

_VERSION: Final = 1
_OPEN: Final = frozenset({"created", "in_progress"})


class CheckpointError(SparkSdkError):
    """A checkpoint that cannot be used: unreadable, written for another job, or naming a
    batch the server no longer knows. Nothing was sent."""


@runtime_checkable
class CheckpointStore(Protocol):
    """Where a stream keeps its checkpoint: a file (`FileCheckpoint`), Redis, a database row.

    `save()` must be atomic and durable (a reader sees the old or the new checkpoint, never
    a mix); `load()` returns None when there is none.
    """

    async def load(self) -> Mapping[str, Any] | None: ...

    async def save(self, checkpoint: Mapping[str, Any]) -> None: ...

    async def clear(self) -> None: ...


@runtime_checkable
class SeekableRecords(Protocol):
    """Records that can start again at a record without reading those before it (a file that
    seeks to a byte offset). As chunks are cut, the stream asks `tell(count)` where record
    `count` starts (a JSON-able position, or None when the source is not right there) and
    keeps the answer in its checkpoint; a resume calls `seek(count, position)` instead of
    reading past `count` records."""

    def tell(self, count: int) -> Any: ...

    def seek(self, count: int, position: Any) -> Records: ...


class FileCheckpoint:
    """A checkpoint in one JSON file, replaced atomically: written to `PATH.tmp`, fsynced,
    renamed over `PATH` (and the directory fsynced), in a worker thread."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        # A save whose caller was cancelled still runs in its thread, perhaps after a later
        # save or clear was asked for. Each call takes a ticket in call order; a thread writes
        # only if no later call wrote first, so a stale save never lands over a newer state
        # (or brings a cleared checkpoint back). The lock keeps threads off one temporary file.
        self._lock = threading.Lock()
        self._tickets = itertools.count(1)
        self._written = 0  # the ticket of the last save or clear that reached the disk

    def __repr__(self) -> str:
        return f"FileCheckpoint({str(self.path)!r})"

    # asyncio's executor, not anyio's worker threads: those are not daemons, and one left
    # behind by an event loop that a Ctrl-C tore down keeps the process from exiting.
    async def load(self) -> Mapping[str, Any] | None:
        return await asyncio.to_thread(self._load)

    async def save(self, checkpoint: Mapping[str, Any]) -> None:
        data = orjson.dumps(checkpoint)
        await asyncio.to_thread(self._save, data, next(self._tickets))

    async def clear(self) -> None:
        await asyncio.to_thread(self._clear, next(self._tickets))

    def _load(self) -> Mapping[str, Any] | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckpointError(f"checkpoint {self.path} cannot be read: {exc}") from None
        try:
            loaded = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise CheckpointError(f"checkpoint {self.path} is corrupt: {exc}") from None
        if not isinstance(loaded, dict):
            raise CheckpointError(f"checkpoint {self.path} is corrupt: not a JSON object")
        return loaded

    def _save(self, data: bytes, ticket: int) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with self._lock:
            if ticket < self._written:
                return  # a later save or clear already landed
            with tmp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self._written = ticket  # landed (a failed save leaves older ones free to land)
            _sync_directory(self.path.parent)

    def _clear(self, ticket: int) -> None:
        with self._lock:
            if ticket < self._written:
                return
            self.path.unlink(missing_ok=True)
            self._written = ticket
            self.path.with_name(self.path.name + ".tmp").unlink(missing_ok=True)
            _sync_directory(self.path.parent)


def _sync_directory(directory: Path) -> None:
    """Make a rename durable (POSIX); where a directory cannot be opened, the OS decides."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@frozen
class Chunking:
    """The options that decide chunk boundaries and ids; recorded, then reused on resume."""

    chunk_size: int
    max_chunk_bytes: int
    max_record_bytes: int | None
    id_prefix: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "chunk_size": self.chunk_size,
            "max_chunk_bytes": self.max_chunk_bytes,
            "max_record_bytes": self.max_record_bytes,
            "id_prefix": self.id_prefix,
        }


def checkpointer(
    store: CheckpointStore | None,
    fingerprint: str | None,
    *,
    service: str | None,
    options: StreamOptions,
    logger: logging.Logger,
) -> Checkpointer | None:
    """The books of a stream with `checkpoint=store`, for the job these options make."""
    if store is None:
        if fingerprint is not None:
            raise SparkSdkError("fingerprint= names the input of a checkpoint: give checkpoint=")
        return None
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise SparkSdkError(f"fingerprint must be a string, got {type(fingerprint).__name__}")
    job = {
        "service": service,
        "input": fingerprint,
        "chunk_size": options.chunk_size,
        "max_chunk_bytes": options.max_chunk_bytes,
        "ordered": options.ordered,
        "headers": list(options.headers) if options.headers is not None else None,
        "parameters": options.parameters,
        "summary": options.summary,
    }
    try:  # normalised through JSON (tuples become lists), as it will be read back
        normalised: dict[str, Any] = orjson.loads(orjson.dumps(job))
    except TypeError as exc:
        raise SparkSdkError(
            f"the stream's options cannot be recorded in a checkpoint: {exc}"
        ) from None
    return Checkpointer(store, normalised, logger)


class Checkpointer:
    """The checkpoint books of one stream: loaded once, then kept and saved as it runs."""

    def __init__(
        self, store: CheckpointStore, job: Mapping[str, Any], logger: logging.Logger
    ) -> None:
        if not isinstance(store, CheckpointStore):
            raise SparkSdkError(
                "checkpoint must be a checkpoint store (load, save and clear coroutines), "
                f"e.g. FileCheckpoint(path); got {type(store).__name__}"
            )
        self.store = store
        self.job = dict(job)
        self._log = logger
        self._loaded = False
        self.resumed: Mapping[str, Any] | None = None  # the checkpoint found, as loaded
        self.batch_id: str | None = None
        self.complete = False
        self.meta: Any = None
        self.chunking: Chunking | None = None
        self._reattached = False
        # The committed position: every chunk below `below`, and those in `above`.
        self._below = 0
        self._above: set[int] = set()
        self._records = 0
        self._read_before = 0  # chunks that may have been pushed to the batch (seq < this)
        self._old_read_before = 0  # ... by the process that stopped
        # Where each chunk_size group began (seq -> record offset): a resume starts there.
        self._starts: dict[int, int] = {0: 0}
        self._source: SeekableRecords | None = None
        self._positions: dict[int, Any] = {}  # record offset -> the source's position there
        self._handed: list[tuple[int, int]] = []  # (seq, records) yielded, not committed
        self._dirty: anyio.Event | None = None  # made by the writer, in its event loop
        self._saved_version = self._version = 0

    # ---- loading -------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the checkpoint once; a checkpoint for another job is an error."""
        if self._loaded:
            return
        loaded = await self.store.load()
        self._loaded = True
        if loaded is None:
            return
        where = repr(self.store)
        try:
            version = loaded.get("version")
            if version != _VERSION:
                raise CheckpointError(f"checkpoint {where} has version {version!r}, not {_VERSION}")
            self._check_job(loaded.get("job"), where)
            chunking = loaded["chunking"]
            self.chunking = Chunking(
                chunk_size=_int(chunking["chunk_size"]),
                max_chunk_bytes=_int(chunking["max_chunk_bytes"]),
                max_record_bytes=(
                    None
                    if chunking["max_record_bytes"] is None
                    else _int(chunking["max_record_bytes"])
                ),
                id_prefix=str(chunking["id_prefix"]),
            )
            batch_id = loaded["batch_id"]
            self.batch_id = batch_id if isinstance(batch_id, str) else None
            position = loaded["committed"]
            self._below = _int(position["below"])
            self._above = {_int(seq) for seq in position["above"]}
            resume = position["resume"]
            self._starts = {_int(resume[0]): _int(resume[1])}
            if loaded.get("input_position") is not None:
                self._positions[_int(resume[1])] = loaded["input_position"]
            self._records = _int(position["records"])
            self._read_before = self._old_read_before = _int(loaded["read_before"])
            self.complete = loaded["complete"] is True
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise CheckpointError(f"checkpoint {where} is corrupt: {exc!r}") from None
        self.meta = loaded.get("meta")
        self.resumed = loaded

    def _check_job(self, job: Any, where: str) -> None:
        if job == self.job:
            return
        if not isinstance(job, Mapping):
            raise CheckpointError(f"checkpoint {where} is corrupt: it names no job")
        names = {"input": "the input (its fingerprint)"}
        changed = [
            f"{names.get(key, key)}: {job.get(key)!r:.80} there, {self.job.get(key)!r:.80} here"
            for key in self.job
            if job.get(key) != self.job.get(key)
        ]
        raise CheckpointError(
            f"checkpoint {where} belongs to another job ({'; '.join(changed)}): resume with the "
            "same service, input and options, or delete the checkpoint to start over"
        )

    @property
    def records_committed(self) -> int:
        """Records finished with (by earlier runs too)."""
        return self._records

    # ---- opening the batch -----------------------------------------------------------------

    async def reusable_batch(self, status: Callable[[str], Any]) -> str | None:
        """The checkpoint's batch when it is still open on the server (re-attach), else None
        (a fresh batch). `status(batch_id)` reads its status string.

        Raises:
            CheckpointError: the server does not know the batch (expired, another tenant).
        """
        batch_id = self.batch_id
        if batch_id is None:
            return None
        try:
            batch_status = await status(batch_id)
        except NotFoundError:
            raise CheckpointError(
                f"checkpoint {self.store!r} names batch {batch_id}, which the server no "
                "longer knows (expired, or another tenant): delete the checkpoint to start over"
            ) from None
        if batch_status in _OPEN:
            return batch_id
        self._log.info(
            "batch %s of the checkpoint is %s: the rest goes to a fresh batch",
            batch_id,
            batch_status,
        )
        return None

    # ---- what the engine reports -----------------------------------------------------------

    async def begin(self, batch_id: str, chunking: Chunking) -> Chunking:
        """The stream starts on `batch_id`: the recorded chunking wins over `chunking` (what
        the pipeline would get now); saved before the first push."""
        if self.chunking is None:
            prefix = hashlib.sha256(orjson.dumps(self.job, option=orjson.OPT_SORT_KEYS))
            self.chunking = Chunking(
                chunking.chunk_size,
                chunking.max_chunk_bytes,
                chunking.max_record_bytes,
                prefix.hexdigest()[:8],
            )
        self._reattached = batch_id == self.batch_id
        if not self._reattached:
            self._read_before = self._old_read_before = 0  # nothing is on the new batch
        self.batch_id = batch_id
        await self._save_now()
        return self.chunking

    @property
    def first_unfinished(self) -> int:
        return self._below

    def watch(self, records: Records) -> None:
        """The caller's records, as given: a `SeekableRecords` is asked for positions."""
        self._source = records if isinstance(records, SeekableRecords) else None

    def resume(self, records: Records) -> tuple[Records, dict[str, int]]:
        """The records to read, and where the chunker starts in them: a source that can
        seek (`SeekableRecords`) starts at the resume point; any other is read past it."""
        seq, offset = self.resume_point
        position = self._positions.get(offset)
        if offset and position is not None and self._source is not None:
            return self._source.seek(offset, position), {"seq": seq, "offset": offset}
        return records, {"seq": seq, "offset": offset, "skip": offset}

    @property
    def resume_point(self) -> tuple[int, int]:
        """(seq, record offset) of the chunk_size group to read from."""
        seq = max(s for s in self._starts if s <= self._below)
        return seq, self._starts[seq]

    def read(self, chunk: Chunk) -> bool:
        """A chunk was cut; False when it was committed before (not to be sent again)."""
        assert self.chunking is not None
        size = self.chunking.chunk_size
        if chunk.offset % size == 0:
            self._starts[chunk.seq] = chunk.offset
        end = chunk.offset + chunk.records
        if self._source is not None and end % size == 0 and end not in self._positions:
            # The chunker has read this group and not one record more: the source is at `end`.
            position = self._source.tell(end)
            if position is not None:
                self._positions[end] = position
        if chunk.seq < self._below or chunk.seq in self._above:
            return False
        self._read_before = max(self._read_before, chunk.seq + 1)
        return True

    def not_yet_read(self, chunk_id: str, next_seq: int) -> bool:
        """Whether `chunk_id` names a chunk the process that stopped may have pushed to this
        batch and that this one has not read again yet (`next_seq` on): its result, pulled
        early, is kept for it rather than dropped as a duplicate."""
        if not self._reattached or self.chunking is None:
            return False
        prefix, _, seq = chunk_id.rpartition("-")
        return (
            prefix == self.chunking.id_prefix
            and seq.isdigit()
            and next_seq <= int(seq) < self._old_read_before
        )

    def maybe_pushed(self, chunk: Chunk) -> bool:
        """Whether the process that stopped may have pushed this chunk to this batch: then
        its result is pulled first, and it is pushed again only if it never comes."""
        return self._reattached and chunk.seq < self._old_read_before

    # ---- what the consumer does ------------------------------------------------------------

    def handed(self, seq: int, records: int) -> None:
        self._handed.append((seq, records))

    def commit(self, meta: Any = None) -> None:
        """Every result handed over is finished with; `meta` (if given) is saved with it.

        Raises:
            SparkSdkError: `meta` cannot be saved as JSON (nothing is committed).
        """
        if meta is not None:
            try:
                orjson.dumps(meta)
            except TypeError as exc:
                raise SparkSdkError(f"commit() meta must be JSON data: {exc}") from None
            self.meta = meta
        for seq, records in self._handed:
            self._records += records
            self._above.add(seq)
        self._handed.clear()
        while self._below in self._above:
            self._above.remove(self._below)
            self._below += 1
        start = max(s for s in self._starts if s <= self._below)
        for seq in [s for s in self._starts if s < start]:
            del self._starts[seq]
        first = self._starts[start]
        for offset in [o for o in self._positions if o < first]:
            del self._positions[offset]
        self._version += 1
        if self._dirty is not None:
            self._dirty.set()

    async def finish(self) -> None:
        """Every result was finished with: saved as complete (a re-run yields nothing)."""
        self.commit()
        if self.chunking is None:
            return  # nothing was ever sent (no records): nothing to resume
        self.complete = True
        await self._save_now()

    async def flush(self) -> None:
        """Save now: the last commit, and every chunk read so far (on a stop: the resume
        then knows which chunks may already be on the batch)."""
        if self.chunking is not None:
            await self._save_now()

    async def run_writer(self) -> None:
        """Save each newest position (one save at a time; positions in between are skipped)."""
        while True:
            self._dirty = anyio.Event()
            if self._version == self._saved_version:
                await self._dirty.wait()
                self._dirty = anyio.Event()
            await self._save_now()

    async def _save_now(self) -> None:
        version = self._version
        try:
            await self.store.save(self.snapshot())
        except OSError as exc:
            raise SparkSdkError(f"could not save checkpoint {self.store!r}: {exc}") from exc
        self._saved_version = max(self._saved_version, version)

    def snapshot(self) -> dict[str, Any]:
        assert self.chunking is not None
        seq, offset = self.resume_point
        return {
            "version": _VERSION,
            "job": self.job,
            "chunking": self.chunking.as_json(),
            "batch_id": self.batch_id,
            "committed": {
                "below": self._below,
                "above": sorted(self._above),
                "resume": [seq, offset],
                "records": self._records,
            },
            "input_position": self._positions.get(offset),
            "read_before": self._read_before,
            "complete": self.complete,
            "meta": self.meta,
        }


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a count, got {value!r}")
    return value
