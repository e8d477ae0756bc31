"""The ingestion guide's resume recipe: an ordered stream's output is a prefix of its input,
so a second run that skips the lines already written completes the file exactly."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import orjson
import pytest

from cspark_async import AsyncClient

from .conftest import check_line, policies


def lines_done(path: Path) -> int:
    if not path.exists():
        return 0
    data = path.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]  # a torn last line (a crash mid-write) is redone
    path.write_bytes(whole)
    return whole.count(b"\n")


async def ingest(spark: AsyncClient, source: Path, target: Path, *, stop_after: int | None) -> None:
    done = lines_done(target)
    with source.open(newline="") as f, target.open("ab") as out:
        rows = itertools.islice(csv.DictReader(f), done, None)
        async for result in spark.batches.stream_outputs("demo/term-life", rows, chunk_size=50):
            for offset, _, output, error in result.items():
                line = {"offset": done + offset, "output": output, "error": error}
                out.write(orjson.dumps(line) + b"\n")
            if stop_after is not None and done + result.offset + len(result.outputs) >= stop_after:
                out.write(b'{"offset": 99')  # and the process dies mid-line
                return


@pytest.mark.spark_emulator(record_latency=0, workers=4)
async def test_an_interrupted_job_resumes_where_it_stopped(
    tmp_path: Path, spark_client: AsyncClient
) -> None:
    rows = policies(1_000)
    source, target = tmp_path / "in.csv", tmp_path / "out.jsonl"
    with source.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    await ingest(spark_client, source, target, stop_after=300)
    assert 300 <= lines_done(target) < 1_000
    await ingest(spark_client, source, target, stop_after=None)
    lines = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    assert len(lines) == 1_000
    for offset, line in enumerate(lines):
        check_line(line, offset, rows[offset])
