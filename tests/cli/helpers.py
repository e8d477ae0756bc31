"""Shared helpers of the command-line tests."""

from __future__ import annotations

import contextlib
import csv
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from cspark_async.cli import cli

FIXTURES = Path(__file__).parent / "fixtures"
ECHO = "my-folder/my-service"
PREMIUM = "demo/term-life"


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def jsonl(path: Path) -> list[Any]:
    return [orjson.loads(line) for line in path.read_text().splitlines()]


def csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


@contextlib.contextmanager
def standalone_emulator(workers: int, latency_ms: float) -> Iterator[str]:
    """An emulator in a process of its own (it outlives the runs it serves); its base URL."""
    command = [sys.executable, "-m", "cspark_async.emulator", "--workers", str(workers)]
    proc = subprocess.Popen(
        [*command, "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
