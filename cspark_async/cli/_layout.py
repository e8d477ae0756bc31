"""The columns of a table output (CSV, Parquet): `offset`, `input.*` (with --include-inputs),
`output.*`, `error_type`, `error_message`, and `extra` only when something needs it.

The columns are fixed by the first successful output, so a run whose first records fail still
gets its output columns: rows before it wait in a temporary file (memory stays bounded), or in
a named one a resumed run can pick up again. Keys that a later output adds, which the header
does not name, go to `extra` as one JSON object.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Final

import orjson

from ._formats import InputError

__all__ = ["EXTRA", "Layout", "flatten"]

EXTRA: Final = "extra"
_ERROR_COLUMNS: Final = ("error_type", "error_message")


def flatten(item: dict[str, Any]) -> dict[str, Any]:
    """A result line as one flat row: `input.x`, `output.y`, `error_type`, `error_message`.
    Values stay as they are (nested ones too); each writer renders them."""
    row: dict[str, Any] = {"offset": item["offset"]}
    for part in ("input", "output"):
        value = item.get(part)
        if isinstance(value, dict):
            for key, inner in value.items():
                row[f"{part}.{key}"] = inner
        elif value is not None:
            row[part] = value  # a record that is not an object
    error = item.get("error")
    if error is not None:
        row["error_type"], row["error_message"] = _error_cells(error)
    return row


def _error_cells(error: Any) -> tuple[str, str]:
    if isinstance(error, dict):
        kind = error.get("error_type") or error.get("type") or error.get("code") or ""
        message = error.get("message")
        if message is None:
            message = orjson.dumps(error).decode()
        return str(kind), str(message)
    return "", str(error)


class Layout:
    """Decides the columns, holding rows back until it can; then fits each row to them."""

    def __init__(self, held: Path | None = None, resume: Mapping[str, Any] | None = None) -> None:
        self.columns: list[str] | None = None
        self._known: frozenset[str] = frozenset()
        self._spool: IO[bytes] | None = None
        self._first_row: dict[str, Any] | None = None
        # Rows held back go here (not a temporary file): resumable. It outlives their release
        # (the checkpoint may still count them), so a resumed state with columns ignores it.
        self._held = held
        if resume is not None and resume["columns"] is not None:
            self.columns = list(resume["columns"])
            self._known = frozenset(self.columns)
        elif resume is not None and held is not None and resume["held"]:
            try:
                with held.open("r+b") as spool:
                    spool.truncate(resume["held"])
                    self._first_row = orjson.loads(spool.readline())
            except FileNotFoundError:
                raise InputError(
                    f"{held} is missing, but the checkpoint recorded {resume['held']} bytes of "
                    "rows held back in it: --force starts the job over"
                ) from None
            self._spool = held.open("a+b")  # "ab" could not be read back

    def state(self) -> dict[str, Any]:
        """The columns (once settled), or how many bytes of held rows (flushed)."""
        held = 0
        if self._spool is not None:
            self._spool.flush()
            held = self._spool.tell()
        return {"columns": self.columns, "held": held}

    def add(self, item: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """Rows ready to write, as (fitted row, extra keys): none while the columns are not
        known yet, then those held back followed by this one."""
        row = flatten(item)
        if self.columns is None:
            if item.get("error") is None:  # the first success names the columns
                self._settle(row)
                yield from self._release()
            else:
                self._hold(row)
                return
        yield self.fit(row)

    def finish(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """Rows still held back at the end (nothing succeeded): columns from the first row."""
        if self.columns is None:
            self._settle(self._first_row or {"offset": None})
            yield from self._release()

    def fit(self, row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        known = self._known
        if known.issuperset(row):
            return row, {}
        return (
            {k: v for k, v in row.items() if k in known},
            {k: v for k, v in row.items() if k not in known},
        )

    def _settle(self, row: dict[str, Any]) -> None:
        names = [k for k in row if k not in _ERROR_COLUMNS]
        self.columns = [*names, *_ERROR_COLUMNS]
        self._known = frozenset(self.columns)

    def _hold(self, row: dict[str, Any]) -> None:
        if self._first_row is None:
            self._first_row = row
        if self._spool is None:
            self._spool = self._open_spool()
        self._spool.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))

    def _open_spool(self) -> IO[bytes]:
        if self._held is None:
            return tempfile.TemporaryFile()
        return self._held.open("w+b")  # closed in _release() or close()

    def _release(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        spool, self._spool = self._spool, None
        if spool is None:
            return
        with spool:
            spool.seek(0)
            for line in spool:
                yield self.fit(orjson.loads(line))

    def close(self) -> None:
        """Close. A named file of held rows stays: until the run's checkpoint is cleared, a
        resume from it reads them again (the writer's `settle()` removes it then)."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None
