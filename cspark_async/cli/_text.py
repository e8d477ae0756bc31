"""Text inputs as lines of str: UTF-8 with or without a BOM by default, any codec by name, and a
decode error said as the file, line and byte where it happened."""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from typing import IO, Final

from ._formats import InputError

__all__ = ["DecodedLines", "check_encoding"]

_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def check_encoding(name: str | None) -> None:
    """Raise InputError unless `name` is a text codec Python knows."""
    if name is None:
        return
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise InputError(f"unknown encoding {name!r} (e.g. utf-8, latin-1, cp1252)") from None
    if not info._is_text_encoding:  # e.g. 'hex', 'zip'
        raise InputError(f"{name!r} is not a text encoding")


class DecodedLines:
    """The lines of a byte stream as str, with their line endings; `line` is the number of the
    last line yielded (1-based). Line by line for encodings where a newline is the byte 0x0A
    (UTF-8, Latin-1, cp1252...), so a bad byte is located exactly; otherwise (UTF-16)
    through a text wrapper."""

    def __init__(
        self,
        raw: IO[bytes],
        name: str,
        encoding: str | None,
        *,
        start_byte: int = 0,
        start_line: int = 0,
    ) -> None:
        self._raw = raw
        self._name = name
        self._given = encoding
        self.line = start_line  # `raw` was moved to `start_byte`, where line `start_line` ends
        self.position = self._start = start_byte  # bytes read, once each line is yielded
        self.seekable = False  # positions are exact (read line by line)

    def __iter__(self) -> Iterator[str]:
        raw, encoding = self._raw, self._given
        head = raw.peek(4)[:4] if isinstance(raw, io.BufferedReader) else b""
        if encoding is None:
            encoding = next((enc for bom, enc in _BOMS if head.startswith(bom)), "utf-8")
        codec = codecs.lookup(encoding)
        if codec.name == "utf-8-sig":
            codec = codecs.lookup("utf-8")  # the BOM is dropped below, once
        if not _ascii_compatible(codec.name):
            yield from self._wrapped(raw, codec.name)
            return
        name = codec.name
        offset = self._start
        first = not offset
        self.seekable = True
        for data in raw:
            self.line += 1
            start = 0
            if first:
                first = False
                if name == "utf-8" and data.startswith(codecs.BOM_UTF8):
                    start = len(codecs.BOM_UTF8)
            try:
                text = data[start:].decode(name) if start else data.decode(name)
            except UnicodeDecodeError as exc:
                bad = data[start + exc.start]
                raise InputError(
                    f"input {self._name} line {self.line}, byte {offset + start + exc.start}: "
                    f"0x{bad:02x} is not valid {name}; pass --encoding "
                    "(e.g. --encoding latin-1 or cp1252)"
                ) from None
            offset += len(data)
            self.position = offset
            yield text

    def _wrapped(self, raw: IO[bytes], encoding: str) -> Iterator[str]:
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        try:
            for line in text:
                self.line += 1
                yield line.removeprefix("\ufeff") if self.line == 1 else line
        except UnicodeDecodeError as exc:
            raise InputError(
                f"input {self._name} after line {self.line}: not valid {encoding} "
                f"({exc.reason}); pass --encoding"
            ) from None
        finally:
            text.detach()  # the caller owns the byte stream


def _ascii_compatible(name: str) -> bool:
    try:
        return "a,\r\n\"'".encode(name) == b"a,\r\n\"'" and "\n".encode(name) == b"\n"
    except UnicodeEncodeError:
        return False
