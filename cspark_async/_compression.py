"""Request-body compression: gzip a body big enough to be worth it, and name the encoding.

Spark's API docs say request bodies may be sent gzip-, br- or deflate-encoded. A push of 200
JSON records shrinks about 5x (JSON-array form) to 10x (objects), and on a real network
sending them is most of a push's time. Small bodies are sent as they are: gzip's framing and
CPU would cost more than they save.
"""

from __future__ import annotations

import gzip
from typing import Final, Literal

from ._exceptions import SparkSdkError

__all__ = ["COMPRESS_MIN_BYTES", "Compression", "check_compress", "compress_body"]

Compression = Literal["gzip"]

COMPRESS_MIN_BYTES: Final = 4096
# Level 5: nearly level 9's ratio on JSON records, at well under half of its CPU time.
_GZIP_LEVEL: Final = 5


def check_compress(_instance: object, _attribute: object, value: object) -> None:
    """attrs validator: None (send bodies as they are) or 'gzip'."""
    if value is not None and value != "gzip":
        raise SparkSdkError(f"compress must be None or 'gzip', got {value!r}")


def compress_body(body: bytes, compress: Compression | None) -> tuple[bytes, str | None]:
    """The body to send and its `Content-Encoding` (None: sent as is)."""
    if compress is None or len(body) < COMPRESS_MIN_BYTES:
        return body, None
    # mtime=0: the same body always compresses to the same bytes (a retry sends them again).
    return gzip.compress(body, compresslevel=_GZIP_LEVEL, mtime=0), "gzip"
