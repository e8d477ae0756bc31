"""`cspark-async run --resume`: an interrupted run continues where it stopped, and its output
ends byte-identical to an uninterrupted run's; what cannot be resumed is refused (exit 2) with
nothing overwritten."""

from __future__ import annotations

import csv
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from .helpers import ECHO, invoke, standalone_emulator

RECORDS = 10_000
CLI = [sys.executable, "-m", "cspark_async.cli"]


@pytest.fixture
def server() -> Iterator[str]:
    """An emulator in a process of its own: it outlives the runs it serves."""
    with standalone_emulator(workers=4, latency_ms=0.3) as url:
        yield url


def write_input(path: Path) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "score"])
        for i in range(RECORDS):
            writer.writerow([i, f"n{i}", i / 4])
    return path


def run_args(source: Path, out: Path, server: str, *extra: str) -> list[str]:
    return [
        "run", ECHO, "-i", str(source), "-o", str(out), "--base-url", server, "--api-key", "k",
        "--chunk-size", "50", "--include-inputs", *extra,
    ]  # fmt: skip


def batches(server: str) -> list[Any]:
    with urllib.request.urlopen(server + "/api/v4/batch/status", timeout=5) as resp:
        described = orjson.loads(resp.read())
        every: list[Any] = described["in_progress_batches"] + described["recent_batches"]
        return every


def interrupted(source: Path, out: Path, server: str, how: signal.Signals) -> str:
    """Start a run, interrupt it once a tenth of its output is written; its stderr."""
    proc = subprocess.Popen(
        [*CLI, *run_args(source, out, server)], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 60_000):
        time.sleep(0.01)
    proc.send_signal(how)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == (130 if how == signal.SIGINT else -signal.SIGKILL), stderr
    return stderr


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_ctrl_c_then_resume_gives_the_uninterrupted_output(
    tmp_path: Path, server: str, fmt: str
) -> None:
    source = write_input(tmp_path / "in.csv")
    reference = tmp_path / f"reference.{fmt}"
    assert invoke(*run_args(source, reference, server)).exit_code == 0
    out = tmp_path / f"out.{fmt}"
    stderr = interrupted(source, out, server, signal.SIGINT)
    assert "interrupted:" in stderr
    command = stderr.strip().splitlines()[-1].strip()
    assert command.startswith("cspark-async run ")
    assert command.endswith(" --resume")
    batch_id = orjson.loads((tmp_path / f"out.{fmt}.checkpoint").read_bytes())["batch_id"]
    (batch,) = [b for b in batches(server) if b["id"] == batch_id]
    assert batch["data"]["batch_status"] == "in_progress"  # kept for the resume
    with out.open("ab") as f:
        f.write(b'{"offset": 12')  # a torn last line: a resume cuts it off
    resumed = subprocess.run(
        [*CLI, *shlex.split(command)[1:]], capture_output=True, text=True, timeout=60
    )
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == reference.read_bytes()
    assert not (tmp_path / f"out.{fmt}.checkpoint").exists()
    assert len(batches(server)) == 2  # the resume re-attached to the interrupted run's batch


def test_a_killed_run_resumes_too(tmp_path: Path, server: str) -> None:
    source = write_input(tmp_path / "in.csv")
    reference = tmp_path / "reference.jsonl"
    assert invoke(*run_args(source, reference, server)).exit_code == 0
    out = tmp_path / "out.jsonl"
    interrupted(source, out, server, signal.SIGKILL)
    saved = orjson.loads((tmp_path / "out.jsonl.checkpoint").read_bytes())
    assert saved["input_position"]["byte"] > 0  # the resume seeks there, not re-reading
    result = invoke(*run_args(source, out, server, "--resume"))
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == reference.read_bytes()


def test_what_cannot_be_resumed_is_refused_and_nothing_is_overwritten(
    tmp_path: Path, server: str
) -> None:
    source = write_input(tmp_path / "in.csv")
    out = tmp_path / "out.jsonl"
    checkpoint = tmp_path / "out.jsonl.checkpoint"
    interrupted(source, out, server, signal.SIGINT)
    kept, saved = out.read_bytes(), checkpoint.read_bytes()

    def refused(*extra: str, says: str) -> None:
        before = checkpoint.read_bytes()
        result = invoke(*run_args(source, out, server, *extra))
        assert result.exit_code == 2, result.stderr
        assert says in result.stderr
        assert out.read_bytes() == kept
        assert checkpoint.read_bytes() == before

    refused(says="belongs to an interrupted job (out.jsonl.checkpoint): add --resume")
    source.write_bytes(source.read_bytes().replace(b"n17,", b"X17,"))
    refused("--resume", says="the input (or an option that reads it")
    source.write_bytes(source.read_bytes().replace(b"X17,", b"n17,"))
    refused("--resume", "--chunk-size", "60", says="resume with the same")
    checkpoint.write_bytes(b'{"version": 1, "job"')
    refused("--resume", says="is corrupt")
    checkpoint.write_bytes(saved)
    out.write_bytes(kept[:100])
    result = invoke(*run_args(source, out, server, "--resume"))
    assert result.exit_code == 2
    assert "fewer than the" in result.stderr
    assert out.read_bytes() == kept[:100]
    out.write_bytes(kept)
    result = invoke(*run_args(source, tmp_path / "other.jsonl", server, "--resume"))
    assert result.exit_code == 2
    assert "has no checkpoint" in result.stderr
    # A batch the server no longer knows: said, and the output stays a valid prefix.
    checkpoint.write_bytes(saved.replace(saved.split(b'"batch_id":"')[1][:36], b"gone" * 9))
    result = invoke(*run_args(source, out, server, "--resume"))
    assert result.exit_code == 2
    assert "no longer knows" in result.stderr
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [line["offset"] for line in lines] == list(range(len(lines)))
    # --force starts over.
    result = invoke(*run_args(source, out, server, "--force"))
    assert result.exit_code == 0, result.stderr
    assert len(out.read_bytes().splitlines()) == RECORDS
    assert not checkpoint.exists()


def test_bad_rows_are_reported_once_across_a_resume(tmp_path: Path, server: str) -> None:
    source = write_input(tmp_path / "in.csv")
    rows = source.read_bytes().split(b"\r\n")
    for i in range(5, RECORDS, 997):  # a ragged row now and then, all through the file
        rows[i] += b",extra"
    source.write_bytes(b"\r\n".join(rows))
    skip = ("--on-bad-row", "skip")
    reference, ref_errors = tmp_path / "reference.jsonl", tmp_path / "ref-errors.jsonl"
    result = invoke(*run_args(source, reference, server, *skip, "--errors", str(ref_errors)))
    assert result.exit_code == 3, result.stderr  # finished, rows skipped
    out, errors = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    proc = subprocess.Popen(
        [*CLI, *run_args(source, out, server, *skip, "--errors", str(errors))],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 200_000):
        time.sleep(0.01)
    proc.kill()
    proc.communicate(timeout=30)
    result = invoke(*run_args(source, out, server, *skip, "--errors", str(errors), "--resume"))
    assert result.exit_code == 3, result.stderr
    assert out.read_bytes() == reference.read_bytes()
    assert errors.read_bytes() == ref_errors.read_bytes()  # each bad row once, in order
    assert f"{len(range(5, RECORDS, 997))} bad rows skipped" in result.stderr
