"""Cell values of tabular inputs: inference that never changes a value's meaning, and the
per-column types of `--column NAME=TYPE`. Pure.

Inference turns text into a number only when the text is exactly how that number is written
back (`"42"`, `"-1.5"`), so `"00123"`, `"1e6"`, `"1.50"`, `"+7"` and `" 3"` stay text: an id or
a code keeps every character. Integers beyond 2**53 stay text too, since a JSON reader that
holds numbers as doubles (as many do) would round them. An empty cell is null.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

import orjson

from ._formats import InputError

__all__ = ["ColumnTypes", "CellError", "infer", "parse_column_specs", "plain_cells"]

_INT: Final = re.compile(r"-?(?:0|[1-9][0-9]*)")
_DECIMAL: Final = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+")
_SAFE_INT: Final = 2**53
_TRUE: Final = frozenset({"true", "yes", "y", "1", "t"})
_FALSE: Final = frozenset({"false", "no", "n", "0", "f"})


class CellError(Exception):
    """A cell that cannot be read as its column's type."""


def infer(text: str) -> Any:
    """`text` as the JSON value it unambiguously is: an int, a float, null (empty), or itself."""
    if not text:
        return None
    if _INT.fullmatch(text):
        number = int(text)
        # "-0" is not how 0 is written; beyond 2**53 a double-based reader would round it.
        return number if -_SAFE_INT < number < _SAFE_INT and text != "-0" else text
    if _DECIMAL.fullmatch(text):
        value = float(text)
        # repr() is the shortest text that reads back as the same float: equal means canonical.
        return value if repr(value) == text else text
    return text


def plain_cells(record: dict[str, Any]) -> dict[str, Any]:
    """Typed cells (Parquet, Excel) as JSON carries them: dates and times as ISO 8601 text, a
    duration in seconds, a decimal as the float it reads back as (else its text, exact).
    Raises CellError for binary cells."""
    for name, value in record.items():
        if value is None or isinstance(value, (str, int, float)):
            continue
        if isinstance(value, (datetime, date, time)):
            record[name] = value.isoformat()
        elif isinstance(value, Decimal):
            as_float = float(value)
            record[name] = as_float if Decimal(repr(as_float)) == value else str(value)
        elif isinstance(value, timedelta):
            record[name] = value.total_seconds()
        elif isinstance(value, (bytes, bytearray)):
            raise CellError(f"column {name!r} holds binary data, which JSON cannot carry")
    return record


def _to_str(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a spreadsheet's 123.0 id is "123"
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value)


def _to_int(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise CellError(f"{value!r} is not an int")
    if isinstance(value, int):
        return value
    if isinstance(value, (float, Decimal)):
        if math.isfinite(value) and value == int(value):
            return int(value)
        raise CellError(f"{value!r} is not an int")
    try:
        return int(str(value).strip())
    except ValueError:
        raise CellError(f"{value!r} is not an int") from None


def _to_float(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise CellError(f"{value!r} is not a float")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise CellError(f"{value!r} is not a float") from None
    if not math.isfinite(number):  # JSON has no NaN or infinity
        raise CellError(f"{value!r} is not a finite float")
    return number


def _to_bool(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CellError(f"{value!r} is not a bool (true/false, yes/no, 1/0)")


def _to_json(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # already a value
    if value == "":
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise CellError(f"{value!r} is not JSON") from None


_CONVERTERS: Final[dict[str, Callable[[Any], Any]]] = {
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "json": _to_json,
}


def parse_column_specs(specs: Iterable[str]) -> dict[str, str]:
    """`["age=int", "id=str"]` -> `{"age": "int", "id": "str"}`. Raises ValueError in words."""
    types: dict[str, str] = {}
    for spec in specs:
        name, sep, kind = spec.rpartition("=")
        if not sep or not name:
            raise ValueError(f"--column {spec!r}: expected NAME=TYPE")
        if kind not in _CONVERTERS:
            raise ValueError(f"--column {spec!r}: TYPE must be one of {', '.join(_CONVERTERS)}")
        types[name] = kind
    return types


class ColumnTypes:
    """How the cells of one input become values: `--column` types first, then inference of
    text cells (unless `infer` is off, when text stays text)."""

    def __init__(self, types: Mapping[str, str] | None = None, *, infer: bool = True) -> None:
        self.types = dict(types or {})
        self.infer = infer
        self._converters = {name: _CONVERTERS[kind] for name, kind in self.types.items()}

    def check_header(self, name: str, header: list[str]) -> int:
        """The header's width, once every input's header rules hold: column names neither blank
        nor repeated, and every `--column` naming one of them (a typo otherwise).

        Raises:
            InputError: naming the input and what is wrong.
        """
        if len(set(header)) != len(header) or any(not column.strip() for column in header):
            raise InputError(
                f"input {name}: the header row has blank or repeated columns: {header}"
            )
        missing = [column for column in self.types if column not in header]
        if missing:
            raise InputError(
                f"input {name}: --column {missing[0]!r} is not a column of the header "
                f"({', '.join(header)})"
            )
        return len(header)

    def text_row(self, header: list[str], cells: list[str]) -> dict[str, Any]:
        """A row of text cells (CSV) as a record. Raises CellError naming the column."""
        if self.infer and not self._converters:  # the hot path
            return {name: infer(cell) for name, cell in zip(header, cells, strict=True)}
        record: dict[str, Any] = {}
        for name, cell in zip(header, cells, strict=True):
            convert = self._converters.get(name)
            if convert is not None:
                record[name] = self._convert(name, convert, cell)
            else:
                record[name] = infer(cell) if self.infer else cell
        return record

    def typed_row(self, record: dict[str, Any]) -> dict[str, Any]:
        """A record whose cells may already be typed (Excel, Parquet, JSON): `--column` types
        apply to every format; inference only to text cells of text-celled formats (Excel)."""
        for name, convert in self._converters.items():
            if name in record:
                record[name] = self._convert(name, convert, record[name])
        return record

    def infer_text_cells(self, record: dict[str, Any]) -> dict[str, Any]:
        if self.infer:
            for name, value in record.items():
                if isinstance(value, str) and name not in self._converters:
                    record[name] = infer(value)
        return record

    @staticmethod
    def _convert(name: str, convert: Callable[[Any], Any], value: Any) -> Any:
        try:
            return convert(value)
        except CellError as exc:
            raise CellError(f"column {name!r}: {exc}") from None
