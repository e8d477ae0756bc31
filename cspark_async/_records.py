"""What may go out as a chunk's inputs, and its JSON: the one set of rules that the stream's
chunker, `push()` and `create_chunks()` share, so all three accept and refuse the same records.

A dataset is dicts (object form) or rows (lists/tuples) under a header row of column names;
the first record decides which. Values JSON cannot carry faithfully are refused rather than
sent altered: NaN and Infinity (orjson writes them as null) and datetimes (orjson would pick a
format the service may not expect). Pure.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from typing import Any, Final, Literal

import orjson

from ._exceptions import SparkSdkError

__all__ = [
    "Label",
    "RecordReader",
    "at_offset",
    "by_index",
    "check_header",
    "encode_json",
    "encode_many",
    "encode_option",
    "frame_chunk",
]

# How a message names record `index`; `rows` is True once the dataset has a header.
Label = Callable[[int, bool], str]


def at_offset(index: int, rows: bool) -> str:
    """The stream's name for a record: its offset in the input."""
    return f"record at offset {index}"


def by_index(index: int, rows: bool) -> str:
    """A dataset's name for a record: `row 3` (after the header row) or `record 3`."""
    return f"{'row' if rows else 'record'} {index}"


_ROW_TYPES: Final = frozenset({list, tuple})
_DICT_TYPE: Final = frozenset({dict})


class RecordReader:
    """Checks records one at a time, in order, as a stream or a dataset is read.

    The first record decides the form: a dict, or a header row (not itself a record) for the
    rows that follow; with `headers=` every record is a row. `count` is the number of records
    read so far.
    """

    def __init__(
        self,
        headers: Sequence[str] | None = None,
        *,
        source: str = "stream",
        label: Label = at_offset,
    ) -> None:
        self.header: tuple[str, ...] | None = None
        self.header_json: bytes | None = None  # the header row as JSON, once known
        self.count = 0
        self._form: Literal["objects", "rows"] | None = None
        self._source = source
        self._label = label
        if headers is not None:
            self._set_header(headers, "headers")

    def check(self, record: Any) -> bool:
        """Whether `record` is a record (False: it was the header row).

        Raises:
            SparkSdkError: `record` does not fit the form, naming it.
        """
        # The hot path of every stream: messages are built only when something is wrong.
        if self._form == "objects":
            if not isinstance(record, Mapping):
                raise SparkSdkError(
                    f"{self.name(self.count)} is a {type(record).__name__}, but the "
                    f"{self._source} started with dicts: every record must be a dict"
                )
        elif self._form == "rows":
            if not isinstance(record, (list, tuple)):
                raise SparkSdkError(
                    f"{self.name(self.count)} is a {type(record).__name__}, but the "
                    f"{self._source} has a header row: every record must be a list of values"
                )
            assert self.header is not None
            if len(record) != len(self.header):
                raise SparkSdkError(
                    f"{self.name(self.count)} has {len(record)} values but the header names "
                    f"{len(self.header)} columns"
                )
        elif isinstance(record, (list, tuple)):
            self._set_header(record, "the header row (first record)")
            return False
        elif isinstance(record, Mapping):
            self._form = "objects"
        else:
            raise SparkSdkError(
                f"{self.name(self.count)} must be a dict, or a header row (list of column names) "
                f"followed by rows; got {type(record).__name__}"
            )
        self.count += 1
        return True

    def check_many(self, records: list[Any]) -> bool:
        """`check()` in bulk, for records that are not a header row: True when every one fits
        (they are counted). False, with nothing counted, when one may not, or the form is not
        known yet: the caller then checks them one at a time, for the exact message."""
        kinds = set(map(type, records))
        if self._form == "rows":
            assert self.header is not None
            if not kinds <= _ROW_TYPES or not set(map(len, records)) <= {len(self.header)}:
                return False
        elif self._form != "objects" or not kinds <= _DICT_TYPE:
            return False
        self.count += len(records)
        return True

    def read(self, record: Any) -> bytes | None:
        """`record` checked and encoded as JSON; None for the header row.

        Raises:
            SparkSdkError: `record` does not fit the form or cannot be encoded, naming it.
        """
        if not self.check(record):
            return None
        return self.encode(record, self.count - 1)

    def encode(self, record: Any, index: int) -> bytes:
        """A record already checked, as JSON; errors name it as record `index`."""
        return encode_json(record, lambda: self.name(index))

    def name(self, index: int) -> str:
        """How messages name record `index`."""
        return self._label(index, self.header is not None)

    def _set_header(self, header: Sequence[Any], what: str) -> None:
        self.header = check_header(header, what)
        self.header_json = orjson.dumps(list(self.header))
        self._form = "rows"


def check_header(header: Iterable[Any], what: str) -> tuple[str, ...]:
    """`header` as a tuple of distinct column names.

    Raises:
        SparkSdkError: not a list of strings, empty, or a name given twice.
    """
    listed = isinstance(header, Iterable) and not isinstance(header, (str, bytes))
    names = tuple(header) if listed else ()  # read once: `header` may be a generator
    if not listed or not all(isinstance(name, str) for name in names):
        raise SparkSdkError(f"{what} must be a list of column names (strings), got {header!r}")
    if not names:
        raise SparkSdkError(f"{what} is empty: name at least one column")
    if len(set(names)) != len(names):
        raise SparkSdkError(f"{what} names a column twice: {list(names)!r}")
    return names


def encode_option(value: Mapping[str, Any] | None, name: str) -> bytes | None:
    """A chunk's `parameters` or `summary` as JSON; None when not given.

    Raises:
        SparkSdkError: not a dict, or a value JSON cannot carry.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise SparkSdkError(f"{name} must be a dict, got {type(value).__name__}")
    return encode_json(value, name)


def encode_json(value: Mapping[str, Any] | Sequence[Any], what: str | Callable[[], str]) -> bytes:
    """A record or an option as JSON, refusing NaN, Infinity, datetimes and anything else JSON
    cannot carry. `what` names it in the error (a callable: built only then).

    Raises:
        SparkSdkError: `{what} cannot be encoded as JSON: ...`, with how to convert the value.
    """
    try:
        encoded = _dumps(value)
        if b"null" in encoded:  # NaN and Infinity come out as null: look closer
            _check_finite(value)
        return encoded
    except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
        name = what() if callable(what) else what
        raise SparkSdkError(f"{name} cannot be encoded as JSON: {_explain(exc)}") from None


def encode_many(values: Sequence[Any]) -> bytes | None:
    """Many checked records as one JSON array, in one call; None when any of them needs a
    closer look (a value JSON cannot carry, or a null that may have been NaN): encode those one
    by one with `RecordReader.encode` to learn which, and why."""
    try:
        encoded = _dumps(values)
        if b"null" in encoded:  # maybe a NaN: one walk over the batch, not one encode a record
            _check_finite(values)
    except (TypeError, ValueError):
        return None
    return encoded


def _dumps(value: Any) -> bytes:
    # Datetimes pass through to the error: orjson would pick a format the service may not
    # expect, so the caller converts them.
    return orjson.dumps(value, option=orjson.OPT_PASSTHROUGH_DATETIME)


def frame_chunk(
    chunk_id: str, size: int, inputs: Iterable[bytes], parameters: bytes, summary: bytes | None
) -> bytes:
    """A chunk object as `POST batch/{id}/chunks` takes it, from parts already encoded (each
    once); `summary` is omitted when None."""
    return b"".join(
        (
            b'{"id":',
            orjson.dumps(chunk_id),
            b',"size":',
            str(size).encode(),
            b',"data":{"inputs":[',
            b",".join(inputs),
            b'],"parameters":',
            parameters,
            *((b',"summary":', summary) if summary is not None else ()),
            b"}}",
        )
    )


def _explain(exc: Exception) -> str:
    if "not JSON serializable" in str(exc):
        return (
            f"{exc}; convert it first (.isoformat() for dates, list() for sets, "
            ".decode() for bytes)"
        )
    return str(exc)


def _check_finite(value: Any) -> None:
    """orjson writes NaN and Infinity as null, silently: refuse them instead, wherever orjson
    finds them (containers, dataclasses, Enum values)."""
    values = value.values() if isinstance(value, Mapping) else value
    for item in values:
        if isinstance(item, Enum):
            item = item.value
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"{item!r} is not valid JSON (NaN and Infinity are not)")
        elif isinstance(item, (Mapping, list, tuple)):
            _check_finite(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            _check_finite([getattr(item, f.name) for f in dataclasses.fields(item)])
