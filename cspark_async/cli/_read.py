"""Records out of input files, lazily, and what to do with a row that is not a record.

CSV, JSON Lines, Parquet and Excel are read a record at a time (memory stays flat); a JSON array
is read whole, since JSON has no record boundary to stream on. A bad row (a CSV row with too few
or too many values, a cell that does not fit its `--column` type, a JSON Lines line that is not
JSON) either stops the run (`abort`, naming its line) or is handed to `on_bad_row` and skipped.
"""

from __future__ import annotations

import csv
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal

import orjson
from attrs import frozen

from ._formats import Format, InputError, sniff_format
from ._text import DecodedLines
from ._values import CellError, ColumnTypes

__all__ = ["BadRow", "BadRowPolicy", "Counted", "RecordReader", "count_records"]

BadRowPolicy = Literal["abort", "skip"]


@frozen
class BadRow:
    """A row that was not read as a record: where it is (`kind` is `line` in text files,
    `row` in Parquet and Excel, `item` in a JSON array; `number` is 1-based) and why."""

    kind: str
    number: int
    reason: str
    cells: Any = None

    @property
    def where(self) -> str:
        return f"{self.kind} {self.number}"

    def as_error(self) -> dict[str, Any]:
        """Its line in the `--errors` file."""
        return {
            self.kind: self.number,
            "input": self.cells,
            "error": {"error_type": "BadRow", "message": self.reason},
        }


class Counted:
    """An iterable of records with a known (estimated) length: the stream evens its chunks over
    the pipeline's workers when it knows how many records are coming."""

    def __init__(self, records: RecordReader, count: int) -> None:
        self._records = records
        self._count = count

    def tell(self, count: int) -> Any:
        return self._records.tell(count)

    def seek(self, count: int, position: Any) -> Iterable[Any]:
        self._records.seek(count, position)
        return self

    def __iter__(self) -> Iterator[Any]:
        return iter(self._records)

    def __len__(self) -> int:
        return self._count


class RecordReader:
    """The records of one input ('-' for stdin). Iterate once."""

    def __init__(
        self,
        path: str,
        fmt: Format | None,
        *,
        columns: ColumnTypes,
        encoding: str | None = None,
        on_bad_row: BadRowPolicy = "abort",
        bad_rows: Callable[[BadRow], None] | None = None,
    ) -> None:
        self.path = path
        self.fmt = fmt
        self.name = "stdin" if path == "-" else path
        self.columns = columns
        self.encoding = encoding
        self.policy = on_bad_row
        self._bad_rows = bad_rows
        self.skipped = 0
        self.reported = 0  # bad rows a run this one resumes already reported: not again
        self._count = 0  # records yielded (from the file's start, after a seek too)
        self._lines: DecodedLines | None = None
        self._resume_at: Mapping[str, Any] | None = None
        self._file: IO[bytes] | None = None

    def close(self) -> None:
        """Close the file now, even under a reader left suspended (the stream stopped)."""
        if self._file is not None:
            self._file.close()

    def tell(self, count: int) -> Any:
        """Where record `count` starts, when this reader has yielded exactly `count` records
        of a CSV or JSON Lines file (None otherwise): a resume seeks there."""
        lines = self._lines
        if (
            count != self._count
            or lines is None
            or not lines.seekable
            or self.path == "-"
            or self.fmt not in ("csv", "jsonl")
        ):
            return None
        return {"byte": lines.position, "line": lines.line, "skipped": self.skipped}

    def seek(self, count: int, position: Any) -> RecordReader:
        """Start at record `count`, at `position` (a `tell()`), without reading up to it."""
        self._count = count
        self._resume_at = position
        self.skipped = int(position["skipped"])
        return self

    def bad(self, row: BadRow) -> None:
        """Abort, or count and report `row` and go on."""
        if self.policy == "abort":
            raise InputError(
                f"input {self.name} {row.where}: {row.reason} (--on-bad-row skip skips such rows)"
            )
        self.skipped += 1
        if self._bad_rows is not None and self.skipped > self.reported:
            self._bad_rows(row)

    def __iter__(self) -> Iterator[Any]:
        if self.path == "-":
            yield from self._from_stream(sys.stdin.buffer)
            return
        file = Path(self.path)
        if not file.is_file():
            raise InputError(f"input {self.path}: no such file")
        if self.fmt == "parquet":
            from ._parquet import read_parquet

            yield from read_parquet(self)
        elif self.fmt == "xlsx":
            from ._excel import read_xlsx

            yield from read_xlsx(self)
        else:
            with file.open("rb") as raw:
                self._file = raw
                if self._resume_at is not None:
                    yield from self._counted(self._resumed(raw, self._resume_at))
                else:
                    yield from self._counted(self._from_stream(raw))

    def _counted(self, records: Iterator[Any]) -> Iterator[Any]:
        for record in records:
            self._count += 1  # before yielding: `tell()` then names the next record
            yield record

    def _resumed(self, raw: IO[bytes], at: Mapping[str, Any]) -> Iterator[Any]:
        header = None
        if self.fmt == "csv":  # the header, then straight to where the resume starts
            header = next(csv.reader(iter(DecodedLines(raw, self.name, self.encoding))), None)
        raw.seek(int(at["byte"]))
        line = int(at["line"])
        lines = DecodedLines(
            raw, self.name, self.encoding, start_byte=int(at["byte"]), start_line=line
        )
        self._lines = lines
        if header is not None:
            yield from self._csv(iter(lines), lines, header=header, line_base=line)
        else:
            yield from self._jsonl(iter(lines), line_base=line)

    def _from_stream(self, raw: IO[bytes]) -> Iterator[Any]:
        lines = DecodedLines(raw, self.name, self.encoding)
        self._lines = lines
        iterator = iter(lines)
        fmt = self.fmt
        if fmt is None:  # stdin without --input-format: sniffed from its first line
            head = next(iterator, "")
            fmt = sniff_format(head)
            iterator = itertools.chain([head], iterator)
        if fmt == "csv":
            yield from self._csv(iterator, lines)
        elif fmt == "jsonl":
            yield from self._jsonl(iterator)
        else:
            yield from self._json("".join(iterator))

    def _csv(
        self,
        lines: Iterator[str],
        source: DecodedLines,
        *,
        header: list[str] | None = None,
        line_base: int = 0,
    ) -> Iterator[dict[str, Any]]:
        reader = csv.reader(lines)
        try:
            if header is None:
                header = next(reader, None)
        except csv.Error as exc:
            raise InputError(f"input {self.name} line {reader.line_num}: {exc}") from None
        if header is None:
            raise InputError(f"input {self.name} is empty: expected a header row")
        columns = self.columns
        width = columns.check_header(self.name, header)
        while True:
            start = line_base + reader.line_num + 1  # a record may span lines: name its first
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self.bad(BadRow("line", start, f"not CSV: {exc}"))
                continue
            if len(row) != width:
                if not row:
                    continue  # a blank line
                self.bad(
                    BadRow(
                        "line",
                        start,
                        f"{len(row)} values, but the header names {width} columns",
                        row,
                    )
                )
                continue
            try:
                yield columns.text_row(header, row)
            except CellError as exc:
                self.bad(BadRow("line", start, str(exc), row))

    def _jsonl(self, lines: Iterator[str], line_base: int = 0) -> Iterator[Any]:
        columns = self.columns
        for number, line in enumerate(lines, start=line_base + 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                self.bad(BadRow("line", number, f"invalid JSON: {exc}", line.rstrip("\r\n")))
                continue
            try:
                yield columns.typed_row(record) if isinstance(record, dict) else record
            except CellError as exc:
                self.bad(BadRow("line", number, str(exc), record))

    def _json(self, text: str) -> Iterator[Any]:
        if not text.strip():
            raise InputError(f"input {self.name} is empty")
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"input {self.name}: invalid JSON: {exc}") from None
        if not isinstance(data, list):
            raise InputError(
                f"input {self.name}: expected a JSON array of records, got {type(data).__name__}"
            )
        columns = self.columns
        for index, record in enumerate(data):
            try:
                yield columns.typed_row(record) if isinstance(record, dict) else record
            except CellError as exc:
                self.bad(BadRow("item", index + 1, str(exc), record))


def count_records(path: str, fmt: Format, encoding: str | None = None) -> int | None:
    """How many records a file holds, cheaply, or None when that is not cheap (stdin, a JSON
    array, a UTF-16 file). A CSV record may span lines: its newlines inside quotes are not
    counted. Bad rows and blank lines are, so the count can exceed what is read."""
    if path == "-" or fmt == "json":
        return None
    if fmt == "parquet":
        from ._parquet import count_parquet

        return count_parquet(path)
    if fmt == "xlsx":
        from ._excel import count_xlsx

        return count_xlsx(path)
    if encoding is not None and 'a\n"'.encode(encoding, "replace") != b'a\n"':
        return None
    newlines = 0
    in_quotes = False
    last = b"\n"
    with open(path, "rb") as f:
        if f.read(2) in (b"\xff\xfe", b"\xfe\xff"):
            return None  # UTF-16 by its BOM
        f.seek(0)
        for block in iter(lambda: f.read(1 << 20), b""):
            last = block[-1:]
            if fmt != "csv":
                newlines += block.count(b"\n")
                continue
            # Between two quote characters the parity flips: newlines at even parity are
            # record ends. A doubled quote ("") flips twice, so it changes nothing.
            parts = block.split(b'"')
            newlines += b"".join(parts[1 if in_quotes else 0 :: 2]).count(b"\n")
            in_quotes ^= len(parts) % 2 == 0  # an odd number of quotes in the block
    lines = newlines + (last != b"\n")  # a last line without a newline
    return max(0, lines - 1) if fmt == "csv" else lines
