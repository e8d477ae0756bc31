"""Streaming writers of `cspark-async run`: JSON Lines, a JSON array, CSV (and Parquet, in
`_parquet`).

Each writes into `TARGET.partial` and moves it into place on `close(keep=True)`, so a run that
fails before its first record leaves an existing file untouched, and an interrupted one leaves a
valid file up to the last record written (writers flush after every chunk).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from ._formats import Format, InputError
from ._layout import EXTRA, Layout

__all__ = ["Writer", "open_writer"]


class Writer(Protocol):
    count: int

    def write(self, item: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def close(self, *, keep: bool = True) -> None: ...


_TEXT: dict[str, Any] = {"encoding": "utf-8", "newline": ""}


class _File:
    """A `.partial` file beside the target, moved into place at the end; stdout, a device or
    a named pipe is written as it is."""

    def __init__(self, path: str, *, binary: bool = False) -> None:
        self.target: Path | None = None
        self.partial: Path | None = None
        if path == "-":
            self.stream: IO[Any] = sys.stdout.buffer if binary else sys.stdout
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

    def finish(self, keep: bool) -> None:
        self.stream.flush()
        if self.partial is None or self.target is None:
            if self.stream not in (sys.stdout, sys.stdout.buffer):
                self.stream.close()
            return
        self.stream.close()
        if keep:
            self.partial.replace(self.target)
        else:
            self.partial.unlink(missing_ok=True)


def _special(path: Path) -> bool:
    if path.absolute().parts[1:2] in (("dev",), ("proc",)):
        return True
    return path.exists() and not path.is_file()


class JsonLinesWriter:
    def __init__(self, path: str) -> None:
        self._file = _File(path, binary=True)
        self.count = 0

    def write(self, item: dict[str, Any]) -> None:
        self._file.stream.write(orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE))
        self.count += 1

    def flush(self) -> None:
        self._file.stream.flush()

    def close(self, *, keep: bool = True) -> None:
        self._file.finish(keep)


class JsonArrayWriter:
    def __init__(self, path: str) -> None:
        self._file = _File(path, binary=True)
        self._file.stream.write(b"[")
        self.count = 0

    def write(self, item: dict[str, Any]) -> None:
        self._file.stream.write((b",\n" if self.count else b"\n") + orjson.dumps(item))
        self.count += 1

    def flush(self) -> None:
        self._file.stream.flush()

    def close(self, *, keep: bool = True) -> None:
        self._file.stream.write(b"\n]\n" if self.count else b"]\n")
        self._file.finish(keep)


class CsvWriter:
    """Rows under the columns `Layout` settles. A row with keys the header does not name gets
    one more cell, their JSON; at the end the header gains an `extra` column for it (the file
    is rewritten once, only then). On stdout, which cannot be rewritten, a note says so."""

    def __init__(self, path: str) -> None:
        self._file = _File(path)
        self._csv = csv.writer(self._file.stream)
        self._layout = Layout()
        self._columns: list[str] = []
        self._extra_at: int | None = None  # the first offset with keys the header lacks
        self.count = 0

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

    def close(self, *, keep: bool = True) -> None:
        try:
            for row, extra in self._layout.finish():
                self._write(row, extra)
        finally:
            self._layout.close()
        if self._extra_at is not None:
            if self._file.partial is not None:
                self._file.stream.close()
                _add_extra_column(self._file.partial, len(self._columns))
                self._file.stream = self._file.partial.open("a", encoding="utf-8", newline="")
            else:
                print(
                    f"cspark-async: from offset {self._extra_at} some outputs have keys the CSV "
                    "header does not name: each row's are one more cell, as JSON "
                    "(write to a file to get an 'extra' column)",
                    file=sys.stderr,
                )
        self._file.finish(keep)


def _add_extra_column(path: Path, width: int) -> None:
    """Rewrite `path` with an `extra` column: its header names it, short rows get it empty."""
    rewritten = path.with_name(path.name + ".extra")
    with (
        path.open(encoding="utf-8", newline="") as source,
        rewritten.open("w", encoding="utf-8", newline="") as target,
    ):
        reader, writer = csv.reader(source), csv.writer(target)
        header = next(reader)
        writer.writerow([*header, EXTRA])
        for row in reader:
            writer.writerow(row if len(row) > width else [*row, ""])
    rewritten.replace(path)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, default=str).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def open_writer(path: str, fmt: Format) -> Writer:
    """A writer of `fmt` into `path` ('-' for stdout)."""
    if fmt == "jsonl":
        return JsonLinesWriter(path)
    if fmt == "json":
        return JsonArrayWriter(path)
    if fmt == "csv":
        return CsvWriter(path)
    if fmt == "parquet":
        from ._parquet import ParquetWriter

        return ParquetWriter(path)
    raise InputError(f"output {path}: {fmt} is not an output format")
