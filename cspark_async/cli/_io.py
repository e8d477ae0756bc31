"""Files in and out of `cspark-async run`: lazy readers and streaming writers.

Readers yield records one at a time (CSV and JSON Lines never hold the file); a JSON array is
read whole, since JSON has no record boundary to stream on. Writers flush after every chunk so
that an interrupted run leaves a valid file up to the last record written.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final, Literal

import orjson

__all__ = ["InputError", "Writer", "count_records", "open_writer", "read_records", "sniff_format"]

Format = Literal["csv", "json", "jsonl"]
_EXTENSIONS: Final[dict[str, Format]] = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


class InputError(Exception):
    """A problem with the input or output file, said in one line."""


def format_of(path: str, given: str | None, *, role: str) -> Format:
    if given:
        return given  # type: ignore[return-value]  # click.Choice limits it
    if path == "-":
        return "jsonl"
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        known = ", ".join(sorted(_EXTENSIONS))
        raise InputError(
            f"{role} {path}: unknown extension {suffix or '(none)'!r}; use one of {known} "
            f"or --{role}-format"
        )
    return _EXTENSIONS[suffix]


def sniff_format(head: str) -> Format:
    """Stdin's format from its first non-blank character."""
    first = head.lstrip()[:1]
    return "json" if first == "[" else "jsonl" if first == "{" else "csv"


def read_records(path: str, fmt: Format | None, *, infer_types: bool = True) -> Iterator[Any]:
    """Records from `path` ('-' for stdin), lazily. Raises InputError naming file and line."""
    if path == "-":
        stream: IO[str] = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="")
        head = stream.readline()
        fmt = fmt or sniff_format(head)
        lines = _chain(head, stream)
        yield from _parse(lines, fmt, "stdin", infer_types)
        return
    file = Path(path)
    if not file.is_file():
        raise InputError(f"input {path}: no such file")
    fmt = fmt or format_of(path, None, role="input")
    with file.open(encoding="utf-8", newline="") as stream:
        yield from _parse(stream, fmt, path, infer_types)


def count_records(path: str, fmt: Format) -> int | None:
    """How many records a file holds, cheaply (line count), or None when unknown."""
    if path == "-" or fmt == "json":
        return None
    with open(path, "rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        f.seek(0, 2)
        if f.tell():
            f.seek(-1, 2)
            lines += f.read(1) != b"\n"  # a last line without a newline
    return max(0, lines - 1) if fmt == "csv" else lines


def _chain(head: str, rest: IO[str]) -> Iterator[str]:
    yield head
    yield from rest


def _parse(lines: Any, fmt: Format, name: str, infer_types: bool) -> Iterator[Any]:
    if fmt == "csv":
        yield from _csv(lines, name, infer_types)
    elif fmt == "jsonl":
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"input {name} line {number}: invalid JSON: {exc}") from None
    else:
        text = "".join(lines)
        if not text.strip():
            raise InputError(f"input {name} is empty")
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"input {name}: invalid JSON: {exc}") from None
        if not isinstance(data, list):
            raise InputError(
                f"input {name}: expected a JSON array of records, got {type(data).__name__}"
            )
        yield from data


def _csv(lines: Any, name: str, infer_types: bool) -> Iterator[dict[str, Any]]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise InputError(f"input {name} is empty: expected a header row")
    if len(set(header)) != len(header) or any(not column for column in header):
        raise InputError(f"input {name}: the header row has blank or repeated columns: {header}")
    width = len(header)
    for row in reader:
        if not row:
            continue
        if len(row) != width:
            raise InputError(
                f"input {name} line {reader.line_num}: {len(row)} values, but the header names "
                f"{width} columns"
            )
        if infer_types:
            yield {column: _infer(value) for column, value in zip(header, row, strict=True)}
        else:
            yield dict(zip(header, row, strict=True))


def _infer(value: str) -> Any:
    """CSV has no types: numbers become numbers, an empty cell null, the rest stays text."""
    if value == "":
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    # "nan"/"inf" are not JSON numbers: keep them as the text they were.
    return number if number == number and number not in (float("inf"), float("-inf")) else value


class Writer:
    """Writes one line (or row) per record into a `.partial` file beside the target;
    `close(keep=True)` completes it and moves it into place, so a run that fails before its
    first record leaves an existing file untouched."""

    def __init__(
        self,
        stream: IO[str],
        fmt: Format,
        *,
        partial: Path | None = None,
        target: Path | None = None,
    ) -> None:
        self._stream = stream
        self._fmt = fmt
        self._partial = partial
        self._target = target
        self.count = 0
        self._csv: csv.DictWriter[str] | None = None
        self._columns: frozenset[str] = frozenset()
        self._pending: list[dict[str, Any]] = []
        self._first = True
        if fmt == "json":
            stream.write("[")

    def write(self, item: dict[str, Any]) -> None:
        if self._fmt == "jsonl":
            self._stream.write(orjson.dumps(item).decode() + "\n")
        elif self._fmt == "json":
            self._stream.write(("\n" if self._first else ",\n") + orjson.dumps(item).decode())
        else:
            self._write_row(_flatten(item))
        self._first = False
        self.count += 1

    def _write_row(self, row: dict[str, Any]) -> None:
        if self._csv is not None:
            self._csv.writerow(self._fit(row))
            return
        # The columns are known once an output has been seen; failed records before it wait.
        self._pending.append(row)
        if any(key.startswith("output.") for key in row) or len(self._pending) >= 1000:
            self._start_csv()

    def _start_csv(self) -> None:
        columns: dict[str, None] = {}
        for row in self._pending:
            columns.update(dict.fromkeys(row))
        columns["extra"] = None  # outputs with columns the header does not name: as JSON
        self._columns = frozenset(columns)
        self._csv = csv.DictWriter(self._stream, fieldnames=list(columns))
        self._csv.writeheader()
        self._csv.writerows(self._pending)
        self._pending.clear()

    def _fit(self, row: dict[str, Any]) -> dict[str, Any]:
        extra = {k: v for k, v in row.items() if k not in self._columns}
        if not extra:
            return row
        fitted = {k: v for k, v in row.items() if k in self._columns}
        fitted["extra"] = orjson.dumps(extra).decode()
        return fitted

    def flush(self) -> None:
        self._stream.flush()

    def close(self, *, keep: bool = True) -> None:
        """Complete the file and move it into place; `keep=False` discards it instead."""
        if self._pending:
            self._start_csv()
        if self._fmt == "json":
            self._stream.write("\n]\n" if not self._first else "]\n")
        self._stream.flush()
        if self._partial is None or self._target is None:
            return  # stdout
        self._stream.close()
        if keep:
            self._partial.replace(self._target)
        else:
            self._partial.unlink(missing_ok=True)


def open_writer(path: str, fmt: Format) -> Writer:
    if path == "-":
        return Writer(sys.stdout, fmt)
    target = Path(path)
    if target.parent and not target.parent.exists():
        raise InputError(f"output {path}: directory {target.parent} does not exist")
    partial = target.with_name(target.name + ".partial")
    stream = partial.open("w", encoding="utf-8", newline="")
    return Writer(stream, fmt, partial=partial, target=target)


def _flatten(item: dict[str, Any]) -> dict[str, Any]:
    """CSV columns: offset, input.*, output.*, error (other nested values as JSON text)."""
    flat: dict[str, Any] = {}
    for key, value in item.items():
        if key in ("input", "output") and isinstance(value, dict):
            for inner, v in value.items():
                flat[f"{key}.{inner}"] = _cell(v)
        else:
            flat[key] = _cell(value)
    return flat


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return "" if value is None else value
