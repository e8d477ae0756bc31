"""examples/ingest.py, run as a user would: a CSV in, one JSON line per record out, progress on
stderr, on its own emulator or on the tenant CSPARK_BASE_URL names, in flat memory."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from cspark_async import AsyncClient
from cspark_async.emulator import Emulator, sample_dataset

from .conftest import EXAMPLES, check_line, policies, wait_for_status

INGEST = EXAMPLES / "ingest.py"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSPARK_")}
    return {**env, **extra}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(INGEST), *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=cwd,
        timeout=120,
        check=False,
    )


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_row_gets_its_line_in_order(tmp_path: Path) -> None:
    rows = policies(2_345, invalid_every=50)
    write_csv(source := tmp_path / "in.csv", rows)
    done = run(str(source), str(target := tmp_path / "out.jsonl"))
    assert done.returncode == 0, done.stderr
    lines = read_jsonl(target)
    assert len(lines) == len(rows)
    for offset, (line, row) in enumerate(zip(lines, rows, strict=True)):
        assert line["input"] == row  # the CSV row as read, strings and all
        check_line(line, offset, row)
    failed = sum(line["error"] is not None for line in lines)
    assert failed == 2_345 // 50
    assert done.stdout.startswith(f"2,345 records ({failed} failed) written to {target} in ")
    progress = [line for line in done.stderr.splitlines() if line.endswith("records/s")]
    assert [p.split()[0] for p in progress] == ["1,000", "2,000"]
    assert "no CSPARK_BASE_URL: using an in-process emulator at http://127.0.0.1:" in done.stderr


def test_defaults_to_the_shipped_sample(tmp_path: Path) -> None:
    done = run(cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = read_jsonl(tmp_path / "policies.jsonl")
    with sample_dataset().open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(lines) == len(rows) == 5_000
    for offset, (line, row) in enumerate(zip(lines, rows, strict=True)):
        assert line["input"] == row
        check_line(line, offset, row)
    assert sum(line["error"] is not None for line in lines) == 10
    assert done.stdout.startswith("5,000 records (10 failed) written to policies.jsonl in ")


def quote(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["policy_id"], "doubled": 2 * int(record["age"])}


@pytest.mark.spark_emulator(services={"acme/quote": quote}, workers=16, record_latency=0)
async def test_runs_on_the_tenant_the_environment_names(
    tmp_path: Path, spark_emulator: Emulator
) -> None:
    rows = policies(500, invalid_every=1_000)
    write_csv(source := tmp_path / "in.csv", rows)
    target = tmp_path / "out.jsonl"
    env = clean_env(**spark_emulator.env(), CSPARK_SERVICE="acme/quote")
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(INGEST),
        str(source),
        str(target),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0, stderr.decode()
    assert b"emulator" not in stderr
    assert stdout.startswith(b"500 records (0 failed)")
    lines = read_jsonl(target)
    assert [line["output"] for line in lines] == [quote(row) for row in rows]
    assert [line["offset"] for line in lines] == list(range(500))


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
@pytest.mark.spark_emulator(record_latency=0.001)
async def test_ctrl_c_cancels_the_pipeline_and_leaves_whole_lines(
    tmp_path: Path, spark_emulator: Emulator, spark_client: AsyncClient
) -> None:
    rows = policies(5_000)
    write_csv(source := tmp_path / "in.csv", rows)
    target = tmp_path / "out.jsonl"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(INGEST),
        str(source),
        str(target),
        env=clean_env(**spark_emulator.env()),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stderr is not None
    with anyio.fail_after(30):
        first = await child.stderr.readline()  # the first progress line: 1,000 done
        # Done means handed to the loop, which may not have written it yet: wait until the
        # file shows it (through the child's write buffer), or a loaded machine flakes.
        while True:  # another process's file: polled, under the fail_after above
            if target.exists() and target.read_bytes().count(b"\n") >= 1_000:
                break
            await anyio.sleep(0.01)
        child.send_signal(signal.SIGINT)
        stdout, stderr = await child.communicate()
        summary = await wait_for_status(spark_client, "cancelled")
    assert first.split()[:2] == [b"1,000", b"records"]
    assert child.returncode == 130, stderr.decode()
    assert f"interrupted; {target} holds the records done so far" in stderr.decode()
    assert stdout == b""
    lines = read_jsonl(target)  # every line whole, in order from the first record
    assert 1_000 <= len(lines) < 5_000
    for offset, line in enumerate(lines):
        check_line(line, offset, rows[offset])
    assert (summary.records_completed or 0) < 5_000


def peak_rss_kib(*args: str) -> int:
    """Peak resident memory of a child running the ingest job, in KiB: VmHWM, which unlike
    ru_maxrss does not carry over the forking parent's size across exec."""
    code = (
        "import re, runpy, sys\n"
        f"sys.argv = {[str(INGEST), *args]!r}\n"
        "try:\n"
        f"    runpy.run_path({str(INGEST)!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "with open('/proc/self/status') as f:\n"
        "    print(re.search(r'VmHWM:\\s+(\\d+) kB', f.read())[1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
        check=True,
    )
    return int(done.stdout.split()[-1])


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status")
def test_memory_stays_flat_as_the_file_grows(tmp_path: Path) -> None:
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    write_csv(small, policies(2_000))
    write_csv(large, policies(80_000))  # 4 MB of CSV, but ~50 MB more if held as dicts
    small_kib = peak_rss_kib(str(small), str(tmp_path / "small.jsonl"))
    large_kib = peak_rss_kib(str(large), str(tmp_path / "large.jsonl"))
    assert (tmp_path / "large.jsonl").read_bytes().count(b"\n") == 80_000
    assert large_kib - small_kib < 20 * 1024, (small_kib, large_kib)  # list(rows): +50 MB
