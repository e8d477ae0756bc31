"""Parquet in and out (the `parquet` extra, pyarrow), a record batch at a time: memory stays
flat however many rows.

Parquet cells are typed, so they are not inferred; `--column` types still apply. Out, the
columns are those of the CSV output; their types come from the first batch of rows written.
A later cell that does not fit its column's type is left null there and kept in `extra`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ._formats import InputError
from ._layout import EXTRA, Layout
from ._values import CellError, plain_cells
from ._write import _File

if TYPE_CHECKING:
    from ._read import RecordReader

__all__ = ["ParquetWriter", "count_parquet", "read_parquet"]

_READ_BATCH: Final = 1024
_WRITE_BATCH: Final = 4096


def _open(path: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"input {path}: not a Parquet file ({exc})") from None


def count_parquet(path: str) -> int:
    file = _open(path)
    try:
        return int(file.metadata.num_rows)
    finally:
        file.close()


def read_parquet(reader: RecordReader) -> Iterator[dict[str, Any]]:
    from ._read import BadRow

    file = _open(reader.path)
    columns = reader.columns
    row = 0
    try:
        columns.check_header(reader.path, list(file.schema_arrow.names))
        for batch in file.iter_batches(batch_size=_READ_BATCH):
            for record in batch.to_pylist():
                row += 1
                try:
                    yield columns.typed_row(plain_cells(record))
                except CellError as exc:
                    reader.bad(BadRow("row", row, str(exc)))
    finally:
        file.close()


class ParquetWriter:
    """Rows in batches of a few thousand under `Layout`'s columns, plus an `extra` column
    (JSON text, null unless a row needs it: a Parquet schema is fixed before the first batch,
    and an all-null column costs next to nothing)."""

    def __init__(self, path: str) -> None:
        self._file = _File(path, binary=True)
        self._layout = Layout()
        self._rows: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self._schema: pa.Schema | None = None
        self._writer: pq.ParquetWriter | None = None
        self.count = 0

    def write(self, item: dict[str, Any]) -> None:
        self._rows.extend(self._layout.add(item))
        self.count += 1
        if len(self._rows) >= _WRITE_BATCH:
            self._write_rows()

    def flush(self) -> None:
        pass  # a batch is written whole; a tiny batch per chunk would bloat the file

    def state(self) -> dict[str, Any]:
        raise InputError("a parquet output cannot be resumed")  # its footer comes last

    def suspend(self) -> None:
        self.close()

    def close(self, *, keep: bool = True) -> None:
        try:
            if keep:
                self._rows.extend(self._layout.finish())
                self._write_rows()
        finally:
            self._layout.close()
            if self._writer is not None:
                self._writer.close()
        self._file.finish(keep)

    def _write_rows(self) -> None:
        if not self._rows:
            return
        assert self._layout.columns is not None
        rows, self._rows = self._rows, []
        extras = [dict(extra) for _, extra in rows]
        if self._schema is None:
            self._schema = _schema(self._layout.columns, [row for row, _ in rows])
            self._writer = pq.ParquetWriter(self._file.stream, self._schema)
        arrays = [
            _column(field, [row.get(field.name) for row, _ in rows], extras)
            for field in self._schema
            if field.name != EXTRA
        ]
        arrays.append(
            pa.array(
                [orjson.dumps(e, default=str).decode() if e else None for e in extras],
                type=pa.string(),
            )
        )
        assert self._writer is not None
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))


def _schema(columns: list[str], rows: list[dict[str, Any]]) -> pa.Schema:
    fields = []
    for name in columns:
        values = [_json_if_nested(row.get(name)) for row in rows]
        try:
            kind = pa.array(values).type
        except (pa.ArrowException, TypeError, OverflowError):
            kind = pa.string()
        if pa.types.is_null(kind):
            kind = pa.string()
        fields.append(pa.field(name, kind))
    fields.append(pa.field(EXTRA, pa.string()))
    return pa.schema(fields)


def _column(field: pa.Field, values: list[Any], extras: list[dict[str, Any]]) -> pa.Array:
    values = [_json_if_nested(v) for v in values]
    try:
        return pa.array(values, type=field.type)
    except (pa.ArrowException, TypeError, OverflowError):
        pass
    fitted: list[Any] = []
    for value, extra in zip(values, extras, strict=True):
        try:
            pa.array([value], type=field.type)
        except (pa.ArrowException, TypeError, OverflowError):
            if pa.types.is_string(field.type):
                fitted.append(str(value))
                continue
            extra[field.name] = value
            fitted.append(None)
        else:
            fitted.append(value)
    return pa.array(fitted, type=field.type)


def _json_if_nested(value: Any) -> Any:
    return orjson.dumps(value, default=str).decode() if isinstance(value, (dict, list)) else value
