"""Streaming writers of `cspark-async run`: JSON Lines, a JSON array, CSV (and Parquet, in
`_parquet`).

Each writes into `TARGET.partial` and moves it into place on `close(keep=True)`, so a run that
fails before its first record leaves an existing file untouched, and an interrupted one leaves a
valid file up to the last record written (writers flush after every chunk).

A resumable run (`Resume`) writes into TARGET itself, so that its checkpoint can record the
file's length after each chunk; resuming truncates the file back to that length (a torn last
line never survives) and appends, carrying on the writer's state (`Writer.state()`).

Its close leaves what the checkpoint recorded as it is, so that a kill before the run settles
is resumed like any other: what it adds past the recorded length (a JSON array's `]`, CSV rows
held back) is cut off and added again, and a CSV file that needs an `extra` column is rewritten
beside it, into `TARGET.final` (whose existence means "complete"). Then the checkpoint is
marked `settling`, `settle()` moves that into place and removes `TARGET.held`, and the
checkpoint goes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
from attrs import frozen

from ._formats import Format, InputError
from ._layout import EXTRA, Layout

__all__ = ["Resume", "Writer", "leftovers", "open_writer", "settle", "special"]


class Writer(Protocol):
    count: int

    def write(self, item: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def close(self, *, keep: bool = True) -> None: ...

    def state(self) -> dict[str, Any]:
        """Flushed: what a resume needs (the file's length, the writer's own state)."""
        ...

    def suspend(self) -> None:
        """Close a resumable run that stopped: as it is, to be resumed (JSON is closed
        with `]` to stay readable; a resume cuts that off)."""
        ...


@frozen
class Resume:
    """Write TARGET in place; `state` (a `Writer.state()`) continues a file, None starts one."""

    state: dict[str, Any] | None = None


_TEXT: dict[str, Any] = {"encoding": "utf-8", "newline": ""}


class _File:
    """A `.partial` file beside the target, moved into place at the end; stdout, a device or
    a named pipe is written as it is."""

    def __init__(self, path: str, *, binary: bool = False, resume: Resume | None = None) -> None:
        self.target: Path | None = None
        self.partial: Path | None = None
        self.path: Path | None = None  # written in place (resumable)
        self.stream: IO[Any]
        if resume is not None:
            self.path = Path(path)
            length = resume.state["bytes"] if resume.state is not None else 0
            _truncate(self.path, length)
            text: dict[str, Any] = {} if binary else _TEXT
            self.stream = self.path.open("ab" if binary else "a", **text)
            return
        if path == "-":
            self.stream = sys.stdout.buffer if binary else sys.stdout
            return
        target = Path(path)
        if _special(target):  # /dev/stderr, a named pipe: written as it is, never renamed
            self.stream = target.open("ab" if binary else "a", **({} if binary else _TEXT))
            return
        target = target.resolve()  # a symlink stays a symlink: its file is replaced
        if not target.parent.exists():
            raise InputError(f"output {path}: directory {target.parent} does not exist")
        self.target = target
        self.partial = target.with_name(target.name + ".partial")
        self.stream = (
            self.partial.open("wb")
            if binary
            else self.partial.open("w", encoding="utf-8", newline="")
        )

    def length(self) -> int:
        """Bytes written (flushed first); 0 for what is not written in place (a pipe)."""
        self.stream.flush()
        if self.path is None:
            return 0
        stream = self.stream
        raw = stream.buffer if isinstance(stream, io.TextIOWrapper) else stream
        return raw.tell()

    @property
    def _stdout(self) -> bool:
        # sys.stdout may be replaced by something without a buffer (a StringIO in a test).
        return self.stream is sys.stdout or self.stream is getattr(sys.stdout, "buffer", None)

    def abandon(self) -> None:
        """Close the stream and leave every file as it is (an error stopped the writer)."""
        if not self._stdout and not self.stream.closed:
            self.stream.close()

    def finish(self, keep: bool) -> None:
        try:
            self.stream.flush()
            if self.path is not None and keep:  # on disk before its checkpoint may be cleared
                os.fsync(self.stream.fileno())
        except BaseException:
            self.abandon()
            raise
        if self.partial is None or self.target is None:
            if not self._stdout:
                self.stream.close()
            if self.path is not None and not keep:
                self.path.unlink(missing_ok=True)
            return
        self.stream.close()
        if keep:
            self.partial.replace(self.target)
        else:
            self.partial.unlink(missing_ok=True)


def _truncate(path: Path, length: int) -> None:
    """Cut `path` back to `length` bytes (created empty when it is new and `length` is 0)."""
    if not length:
        path.open("wb").close()
        return
    try:
        with path.open("r+b") as f:
            size = f.seek(0, io.SEEK_END)
            if size < length:
                raise InputError(
                    f"output {path} holds {size} bytes, fewer than the {length} its checkpoint "
                    "recorded: it was changed since; --force starts the job over"
                )
            f.truncate(length)
    except FileNotFoundError:
        raise InputError(
            f"output {path} is missing, but its checkpoint recorded {length} bytes: "
            "--force starts the job over"
        ) from None


def held_path(path: str | Path) -> Path:
    """Where a resumable CSV run keeps the rows it holds back until its columns are known."""
    return Path(path).with_name(Path(path).name + ".held")


def final_path(path: str | Path) -> Path:
    """Where a resumable run's rewritten output waits for its checkpoint to be cleared: beside
    the file a symlink names (that file is replaced, not the link)."""
    target = Path(path).resolve()
    return target.with_name(target.name + ".final")


def settle(path: str) -> None:
    """Finish a resumable run once its checkpoint says so (`settling`): move its final form (if
    its close wrote one) over the output, then remove the held rows' file. Safe to repeat."""
    target = Path(path).resolve()
    with contextlib.suppress(FileNotFoundError):
        final_path(target).replace(target)
    held_path(path).unlink(missing_ok=True)


def leftovers(path: str) -> list[Path]:
    """What a resumable run keeps beside its output until it is settled (a run that starts
    over removes them)."""
    final = final_path(path)
    return [final.with_name(final.name + ".tmp"), final, held_path(path)]


def special(path: Path) -> bool:
    """A device, pipe or other non-file: written as it is, never resumed."""
    return _special(path)


def _special(path: Path) -> bool:
    if path.absolute().parts[1:2] in (("dev",), ("proc",)):
        return True
    return path.exists() and not path.is_file()


class _JsonWriter:
    """What the JSON Lines and JSON array writers share: a binary file, a count of items, and
    the state a resume needs (the file's committed length and that count)."""

    def __init__(self, path: str, resume: Resume | None = None) -> None:
        self._file = _File(path, binary=True, resume=resume)
        self.count = _resumed(resume, "count")

    def flush(self) -> None:
        self._file.stream.flush()

    def state(self) -> dict[str, Any]:
        return {"bytes": self._file.length(), "count": self.count}

    def suspend(self) -> None:
        self.close()

    def close(self, *, keep: bool = True) -> None:
        self._file.finish(keep)


class JsonLinesWriter(_JsonWriter):
    def write(self, item: dict[str, Any]) -> None:
        self._file.stream.write(orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE))
        self.count += 1


class JsonArrayWriter(_JsonWriter):
    def __init__(self, path: str, resume: Resume | None = None) -> None:
        super().__init__(path, resume)
        if resume is None or resume.state is None:
            self._file.stream.write(b"[")

    def write(self, item: dict[str, Any]) -> None:
        self._file.stream.write((b",\n" if self.count else b"\n") + orjson.dumps(item))
        self.count += 1

    def close(self, *, keep: bool = True) -> None:
        # The closing bracket is past the recorded length: a resume cuts it off again.
        self._file.stream.write(b"\n]\n" if self.count else b"]\n")
        self._file.finish(keep)


class CsvWriter:
    """Rows under the columns `Layout` settles. A row with keys the header does not name gets
    one more cell, their JSON; at the end the header gains an `extra` column for it (the file
    is rewritten once, only then). On stdout, which cannot be rewritten, a note says so."""

    def __init__(self, path: str, resume: Resume | None = None) -> None:
        self._file = _File(path, resume=resume)
        self._csv = csv.writer(self._file.stream)
        self._columns: list[str] = []
        self._extra_at: int | None = None  # the first offset with keys the header lacks
        self.count = _resumed(resume, "count")
        held = None
        if resume is not None:  # rows held back (no columns yet) wait in a file, resumable
            held = held_path(path)
        state = resume.state if resume is not None else None
        self._layout = Layout(held, state["layout"] if state else None)
        if state is not None:
            self._columns = self._layout.columns or []
            self._extra_at = state["extra_at"]

    def write(self, item: dict[str, Any]) -> None:
        for row, extra in self._layout.add(item):
            self._write(row, extra)
        self.count += 1

    def _write(self, row: dict[str, Any], extra: dict[str, Any]) -> None:
        if not self._columns:
            assert self._layout.columns is not None
            self._columns = self._layout.columns
            self._csv.writerow(self._columns)
        cells = [_cell(row.get(column)) for column in self._columns]
        if extra:
            if self._extra_at is None:
                self._extra_at = row.get("offset", -1)
            cells.append(orjson.dumps(extra, default=str).decode())
        self._csv.writerow(cells)

    def flush(self) -> None:
        self._file.stream.flush()

    def state(self) -> dict[str, Any]:
        return {
            "bytes": self._file.length(),
            "count": self.count,
            "layout": self._layout.state(),
            "extra_at": self._extra_at,
        }

    def suspend(self) -> None:
        self._layout.close()  # rows held back stay in their file, for the resume
        self._file.finish(True)

    def close(self, *, keep: bool = True) -> None:
        try:
            self._close(keep)
        except BaseException:
            self._file.abandon()  # failed half-way: the file stays as it is, but not open
            raise

    def _close(self, keep: bool) -> None:
        try:
            for row, extra in self._layout.finish():
                self._write(row, extra)
        finally:
            self._layout.close()
        if self._extra_at is not None:
            width = len(self._columns)
            if self._file.path is not None:  # resumable: the file stays as recorded
                self._file.stream.flush()
                _add_extra_column(self._file.path, width, final_path(self._file.path))
            elif self._file.partial is not None:
                self._file.stream.close()
                _add_extra_column(self._file.partial, width, self._file.partial)
                self._file.stream = self._file.partial.open("a", encoding="utf-8", newline="")
            else:
                print(
                    f"cspark-async: from offset {self._extra_at} some outputs have keys the CSV "
                    "header does not name: each row's are one more cell, as JSON "
                    "(write to a file to get an 'extra' column)",
                    file=sys.stderr,
                )
        self._file.finish(keep)


def _add_extra_column(path: Path, width: int, into: Path) -> None:
    """`path` with an `extra` column (its header names it, short rows get it empty), written
    whole into `into` (which may be `path`): through a temporary file, synced, then renamed."""
    rewritten = into.with_name(into.name + ".tmp")
    with (
        path.open(encoding="utf-8", newline="") as source,
        rewritten.open("w", encoding="utf-8", newline="") as target,
    ):
        reader, writer = csv.reader(source), csv.writer(target)
        header = next(reader)
        writer.writerow([*header, EXTRA])
        for row in reader:
            writer.writerow(row if len(row) > width else [*row, ""])
        target.flush()
        os.fsync(target.fileno())
    rewritten.replace(into)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, default=str).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _resumed(resume: Resume | None, key: str) -> int:
    state = resume.state if resume is not None else None
    return int(state[key]) if state is not None else 0


def open_writer(path: str, fmt: Format, resume: Resume | None = None) -> Writer:
    """A writer of `fmt` into `path` ('-' for stdout); `resume`: in place, resumable."""
    if fmt == "jsonl":
        return JsonLinesWriter(path, resume)
    if fmt == "json":
        return JsonArrayWriter(path, resume)
    if fmt == "csv":
        return CsvWriter(path, resume)
    if resume is not None:
        raise InputError(f"output {path}: a {fmt} output cannot be resumed")
    if fmt == "parquet":
        from ._parquet import ParquetWriter

        return ParquetWriter(path)
    raise InputError(f"output {path}: {fmt} is not an output format")
