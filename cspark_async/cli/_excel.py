"""Excel `.xlsx` in (the `excel` extra, openpyxl in read-only mode: rows stream from the file,
memory stays flat). The first sheet; its first row is the header. Number and date cells keep
their types; text cells follow the same inference and `--column` rules as CSV cells."""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from ._formats import InputError
from ._values import CellError, plain_cells

if TYPE_CHECKING:
    from openpyxl.workbook.workbook import Workbook

    from ._read import RecordReader

__all__ = ["count_xlsx", "read_xlsx"]


def _open(path: str) -> Workbook:
    try:
        with warnings.catch_warnings():
            # e.g. "Workbook contains no default style": about looks, not about values.
            warnings.simplefilter("ignore", UserWarning)
            return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise InputError(f"input {path}: not an .xlsx workbook ({exc})") from None


def count_xlsx(path: str) -> int | None:
    """Rows below the header, from the sheet's recorded dimensions (None when it has none)."""
    book = _open(path)
    try:
        rows = book.worksheets[0].max_row
        return max(0, rows - 1) if rows else None
    finally:
        book.close()


def read_xlsx(reader: RecordReader) -> Iterator[dict[str, Any]]:
    from ._read import BadRow

    book = _open(reader.path)
    rows = book.worksheets[0].iter_rows(values_only=True)
    try:
        header_row = next(rows, None)
        header = _trim(list(header_row or ()))
        if not header:
            raise InputError(f"input {reader.path} is empty: expected a header row")
        names = ["" if cell is None else str(cell).strip() for cell in header]
        columns = reader.columns
        width = columns.check_header(reader.path, names)
        for number, row in enumerate(rows, start=2):  # Excel's own row numbers
            cells = _trim(list(row))
            if not cells:
                continue  # an empty row
            if len(cells) > width:
                reader.bad(
                    BadRow(
                        "row",
                        number,
                        f"{len(cells)} values, but the header names {width} columns",
                        [_text(c) for c in cells],
                    )
                )
                continue
            record = dict(zip(names, cells + [None] * (width - len(cells)), strict=True))
            try:
                yield columns.typed_row(columns.infer_text_cells(plain_cells(record)))
            except CellError as exc:
                reader.bad(BadRow("row", number, str(exc), [_text(c) for c in cells]))
    finally:
        rows.close()  # it holds the sheet open inside the workbook's zip file
        book.close()


def _trim(cells: list[Any]) -> list[Any]:
    while cells and (cells[-1] is None or cells[-1] == ""):
        cells.pop()
    return cells


def _text(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)
