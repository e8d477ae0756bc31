"""The records every contender sends: JSON-array form (a header row, then value rows), the form
Spark recommends for batches and the only one the official `create_chunks` accepts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["HEADER", "SERVICE", "dataset", "dataset_bytes", "id_sum", "row", "rows", "wide_rows"]

SERVICE = "my-folder/my-service"  # the emulator's echo service: outputs = inputs
HEADER = ["id", "age", "smoker", "cover", "term", "plan"]


def row(i: int) -> list[Any]:
    return [i, 20 + i % 50, "yes" if i % 3 == 0 else "no", 100_000 + i, 10 + i % 20, "silver"]


def rows(n: int) -> Iterator[list[Any]]:
    """The header row, then `n` rows, lazily: what a reader of a big file would yield."""
    yield list(HEADER)
    for i in range(n):
        yield row(i)


def dataset(n: int) -> list[list[Any]]:
    """The header row, then `n` rows, in memory (what the official workflow reads from JSON)."""
    return list(rows(n))


WIDE_NOTE = 1_950  # characters of padding: a wide record takes about 2 KB of JSON


def wide_rows(n: int) -> Iterator[list[Any]]:
    """Like `rows`, each row padded with a note to about 2 KB of JSON (a wide record)."""
    yield [*HEADER, "note"]
    for i in range(n):
        yield [*row(i), format(i, "x").rjust(WIDE_NOTE, ".")]


def dataset_bytes(n: int) -> int:
    """Size of the `n` rows as compact JSON: what they occupy in the input buffer, roughly."""
    import orjson

    return sum(len(orjson.dumps(row(i))) + 1 for i in range(n))


def id_sum(n: int) -> int:
    """Sum of the `id` column: outputs whose ids add up to this came back exactly once (with
    the count matching), a cheap check that is run after the clock stops."""
    return n * (n - 1) // 2
