"""How `cspark-async` behaves as a Unix command: pipes, credentials, `python -m`, logs, help,
and the standalone emulator with a user's own service."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from .helpers import ECHO, invoke, jsonl

REPO = Path(__file__).parents[2]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cspark_async", *args]


def test_python_dash_m_runs_the_command() -> None:
    proc = subprocess.run(
        command("--help"), capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 0
    assert "run" in proc.stdout
    assert "emulator" in proc.stdout


def test_run_help_lists_the_exit_statuses_and_the_new_options() -> None:
    result = invoke("run", "--help")
    assert result.exit_code == 0
    text = result.stdout
    for option in ("--on-bad-row", "--encoding", "--column", "--acceptable-errors", "--verbose"):
        assert option in text
    assert "Exit status:" in text
    for status in ("0 ", "1 ", "2 ", "3 ", "130", "141"):
        assert f"\n    {status}" in text


def test_a_closed_output_pipe_ends_the_run_quietly(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(orjson.dumps({"k": i}) + b"\n" for i in range(50_000)))
    proc = subprocess.Popen(
        command("run", ECHO, "-i", str(source), "-o", "-", "--emulate", "-q"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert orjson.loads(proc.stdout.readline())["offset"] == 0  # what `head -1` would do
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGPIPE
    assert stderr == b""


def test_missing_credentials_are_explained_in_command_terms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./.env
    for name in list(os.environ):
        if name.startswith("CSPARK_"):
            monkeypatch.delenv(name)
    source = tmp_path / "in.jsonl"
    source.write_text('{"a": 1}\n')
    out = str(tmp_path / "o.jsonl")
    result = invoke("run", ECHO, "-i", str(source), "-o", out, "--base-url", "http://h/t")
    assert result.exit_code == 2
    assert "no credential: pass --api-key or --token, or set CSPARK_API_KEY" in result.stderr
    assert "api_key=" not in result.stderr
    result = invoke("describe", "--base-url", "http://h/t")
    assert result.exit_code == 2
    assert "--api-key" in result.stderr


@pytest.fixture
def emulator_with_my_service() -> Iterator[tuple[str, list[str]]]:
    """`cspark-async emulator` serving tests/cli/services.py's `double` as calc/double."""
    proc = subprocess.Popen(
        command(
            "emulator",
            "--workers",
            "2",
            "--latency-ms",
            "0.5",
            "--api-key",
            "sekret",
            "--service",
            "calc/double=tests.cli.services:double",
        ),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    url = proc.stdout.readline().strip()
    banner = [proc.stderr.readline().rstrip() for _ in range(4)]
    try:
        yield url, banner
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_the_emulator_serves_a_users_service_and_says_what_it_serves(
    tmp_path: Path, emulator_with_my_service: tuple[str, list[str]]
) -> None:
    url, banner = emulator_with_my_service
    assert url.startswith("http://127.0.0.1:")
    assert banner[0] == f"Spark emulator serving {url} (Ctrl-C to stop)"
    assert "calc/double (tests.cli.services:double)" in banner[1]
    assert "demo/term-life" in banner[1]
    assert "2 per batch; latency 0.5 ms per record" in banner[2]
    assert banner[3].endswith("API key enforced")
    source = tmp_path / "in.csv"
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["x"])
        writer.writerows([i] for i in range(450))
    out = tmp_path / "out.jsonl"
    connection = ["--base-url", url, "--api-key", "sekret"]
    result = invoke("run", "calc/double", "-i", str(source), "-o", str(out), *connection)
    assert result.exit_code == 0, result.stderr
    assert [line["output"]["doubled"] for line in jsonl(out)] == [2 * i for i in range(450)]
    (batch,) = orjson.loads(invoke("describe", *connection).stdout)["recent_batches"]
    status = orjson.loads(invoke("status", batch["id"], *connection).stdout)
    # 450 records over 2 workers: 4 even chunks of 113 (a fixed 200 would make 200, 200, 50).
    assert status["chunks_submitted"] == 4
    assert f"Batch {batch['id']}: completed" in result.stderr


def test_verbose_logs_requests_without_credentials(
    tmp_path: Path, emulator_with_my_service: tuple[str, list[str]]
) -> None:
    url, _ = emulator_with_my_service
    source = tmp_path / "in.jsonl"
    source.write_text('{"x": 1}\n{"x": 2}\n')
    proc = subprocess.run(
        command(
            "run",
            "calc/double",
            "-i",
            str(source),
            "-o",
            str(tmp_path / "o.jsonl"),
            "--base-url",
            url,
            "--api-key",
            "sekret",
            "-v",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "POST " in proc.stderr
    assert "/chunks" in proc.stderr
    assert "sekret" not in proc.stderr


def test_emulator_options_are_checked_and_shown() -> None:
    result = invoke("emulator", "--help")
    assert result.exit_code == 0
    assert "--service FOLDER/NAME=module:function" in result.stdout
    assert "[default: 16;" in result.stdout
    for bad, message in [
        ("calc-double=tests.cli.services:double", "folder/name"),
        ("calc/double=tests.cli.services", "module:function"),
        ("calc/double=tests.cli.nope:double", "cannot import tests.cli.nope"),
        ("calc/double=tests.cli.services:triple", "has no function 'triple'"),
    ]:
        result = invoke("emulator", "--service", bad)
        assert result.exit_code == 2
        assert message in result.stderr
