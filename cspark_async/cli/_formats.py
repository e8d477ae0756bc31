"""Which file format a path is (by extension or by flag), and whether its optional extra is
installed."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Final, Literal

__all__ = [
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "Format",
    "InputError",
    "format_of",
    "require_extra",
    "sniff_format",
]

Format = Literal["csv", "json", "jsonl", "parquet", "xlsx"]
INPUT_FORMATS: Final = ("csv", "json", "jsonl", "parquet", "xlsx")
OUTPUT_FORMATS: Final = ("csv", "json", "jsonl", "parquet")
_EXTENSIONS: Final[dict[str, Format]] = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
}
# The formats an optional extra brings: (the module it needs, the extra's name).
_EXTRAS: Final[dict[str, tuple[str, str]]] = {
    "parquet": ("pyarrow", "parquet"),
    "xlsx": ("openpyxl", "excel"),
}


class InputError(Exception):
    """A problem with the input or output file, or with how it was asked for, said in one line."""


def format_of(path: str, given: str | None, *, role: str) -> Format:
    """The format of `path` for `role` ('input' or 'output'): `given`, or its extension."""
    known = INPUT_FORMATS if role == "input" else OUTPUT_FORMATS
    if given:
        fmt = given
    elif path == "-":
        return "jsonl"
    else:
        suffix = Path(path).suffix.lower()
        if suffix not in _EXTENSIONS:
            names = ", ".join(e for e, f in _EXTENSIONS.items() if f in known)
            raise InputError(
                f"{role} {path}: unknown extension {suffix or '(none)'!r}; use one of {names} "
                f"or --{role}-format"
            )
        fmt = _EXTENSIONS[suffix]
    if fmt not in known:
        raise InputError(f"{role} {path}: {fmt} is not supported as {role}")
    if path == "-" and fmt in _EXTRAS:
        raise InputError(f"{fmt} needs a file: it cannot be read from stdin or written to stdout")
    return fmt  # type: ignore[return-value]  # one of `known`


def require_extra(fmt: str) -> None:
    """Raise InputError naming the extra to install when `fmt` needs one that is missing."""
    if fmt not in _EXTRAS:
        return
    module, extra = _EXTRAS[fmt]
    try:
        importlib.import_module(module)
    except ImportError:
        raise InputError(
            f"{fmt} files need the '{extra}' extra ({module} is not installed): "
            f"pip install 'cspark-async[{extra}]'"
        ) from None


def sniff_format(head: str) -> Format:
    """Stdin's format from its first non-blank character."""
    first = head.lstrip()[:1]
    return "json" if first == "[" else "jsonl" if first == "{" else "csv"
