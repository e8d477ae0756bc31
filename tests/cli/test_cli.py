"""The `cspark-async` command end to end: in-process through click's runner, and as a real
process for signals and stdin/stdout."""

from __future__ import annotations

import csv
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from cspark_async.cli import cli

from .helpers import standalone_emulator

ECHO = "my-folder/my-service"


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def write_csv(path: Path, rows: int) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "score"])
        for i in range(rows):
            writer.writerow([i, f"n{i}", i / 4])
    return path


def jsonl(path: Path) -> list[Any]:
    return [orjson.loads(line) for line in path.read_text().splitlines()]


def test_run_streams_a_csv_into_json_lines(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", 2500)
    out = tmp_path / "out.jsonl"
    result = invoke(
        "run", ECHO, "-i", str(source), "-o", str(out), "--emulate", "--chunk-size", "128"
    )
    assert result.exit_code == 0, result.output
    lines = jsonl(out)
    assert [line["offset"] for line in lines] == list(range(2500))
    assert lines[7] == {
        "offset": 7,
        "output": {"id": 7, "name": "n7", "score": 1.75},
        "error": None,
    }
    assert "Done: 2,500 records" in result.stderr
    assert "0 failed" in result.stderr


def test_run_csv_and_json_outputs_with_inputs_and_errors(tmp_path: Path) -> None:
    source = tmp_path / "policies.csv"
    source.write_text(
        "age,smoker,cover,term,plan\n30,no,100000,10,gold\n90,no,1,10,gold\n"
        "40,yes,200000,20,silver\n"
    )
    errors = tmp_path / "errors.jsonl"
    out_csv = tmp_path / "out.csv"
    result = invoke(
        "run",
        "demo/term-life",
        "-i",
        str(source),
        "-o",
        str(out_csv),
        "--emulate",
        "--include-inputs",
        "--errors",
        str(errors),
    )
    assert result.exit_code == 3  # finished, but a record failed
    with out_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["offset"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["input.age"] == "30"
    assert float(rows[0]["output.annual_premium"]) > 0
    assert rows[1]["output.annual_premium"] == ""
    assert "age 90 is outside" in rows[1]["error_message"]
    assert rows[1]["error_type"]
    assert "extra" not in rows[0]
    (failed,) = jsonl(errors)
    assert failed["offset"] == 1
    assert failed["input"]["age"] == 90
    out_json = tmp_path / "out.json"
    result = invoke(
        "run", "demo/term-life", "-i", str(source), "-o", str(out_json), "--emulate", "-q"
    )
    assert result.exit_code == 3
    assert result.stderr == ""
    assert [item["offset"] for item in orjson.loads(out_json.read_bytes())] == [0, 1, 2]


def test_run_json_inputs_array_form_and_objects(tmp_path: Path) -> None:
    objects = tmp_path / "objects.json"
    objects.write_bytes(orjson.dumps([{"v": i} for i in range(10)]))
    rows = tmp_path / "rows.json"
    rows.write_bytes(orjson.dumps([["v"], *[[i] for i in range(10)]]))
    for source in (objects, rows):
        out = tmp_path / f"{source.stem}.jsonl"
        result = invoke("run", ECHO, "-i", str(source), "-o", str(out), "--emulate")
        assert result.exit_code == 0, result.output
        assert [line["output"]["v"] for line in jsonl(out)] == list(range(10))


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "missing.csv", "no such file"),
        (lambda d: _write(d / "empty.csv", ""), "is empty"),
        (lambda d: _write(d / "bad.json", "[{]"), "invalid JSON"),
        (lambda d: _write(d / "bad.jsonl", '{"a": 1}\n{oops\n'), "line 2: invalid JSON"),
        (lambda d: _write(d / "data.xml", "<a/>"), "unknown extension '.xml'"),
        (lambda d: _write(d / "scalar.json", "42"), "expected a JSON array"),
    ],
)
def test_bad_inputs_fail_with_one_clear_line(tmp_path: Path, setup: Any, message: str) -> None:
    source = setup(tmp_path)
    result = invoke("run", ECHO, "-i", str(source), "-o", str(tmp_path / "o.jsonl"), "--emulate")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert lines[0].startswith("cspark-async: ")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_bad_usage(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", 1)
    result = invoke("run", ECHO, "-i", str(source), "-o", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 2
    assert "no tenant" in result.stderr
    result = invoke("run", ECHO, "-i", str(source), "-o", str(tmp_path / "o.txt"), "--emulate")
    assert result.exit_code == 2
    assert "unknown extension '.txt'" in result.stderr
    result = invoke(
        "run", "not a uri!", "-i", str(source), "-o", str(tmp_path / "o.jsonl"), "--emulate"
    )
    assert result.exit_code in (1, 2)
    assert result.stderr.startswith("cspark-async: ")
    result = invoke(
        "run",
        ECHO,
        "-i",
        str(source),
        "-o",
        str(tmp_path / "o.jsonl"),
        "--emulate",
        "--chunk-size",
        "0",
    )
    assert result.exit_code == 2


def test_demo_prices_the_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("demo", "--latency-ms", "0")
    assert result.exit_code == 0, result.output
    lines = jsonl(tmp_path / "demo-outputs.jsonl")
    assert len(lines) == 5000
    assert sum(line["error"] is not None for line in lines) == 10
    assert "Done: 5,000 records" in result.stderr
    assert "10 failed" in result.stderr


@pytest.fixture
def standalone() -> Iterator[str]:
    with standalone_emulator(workers=2, latency_ms=2) as url:
        yield url


def describe(base_url: str) -> Any:
    with urllib.request.urlopen(base_url + "/api/v4/batch/status", timeout=5) as resp:
        return orjson.loads(resp.read())


def test_describe_status_and_cancel(tmp_path: Path, standalone: str) -> None:
    source = write_csv(tmp_path / "in.csv", 10)
    out = tmp_path / "out.jsonl"
    assert (
        invoke(
            "run",
            ECHO,
            "-i",
            str(source),
            "-o",
            str(out),
            "--base-url",
            standalone,
            "--api-key",
            "k",
        ).exit_code
        == 0
    )
    described = invoke("describe", "--base-url", standalone, "--api-key", "k")
    assert described.exit_code == 0
    (batch,) = orjson.loads(described.stdout)["recent_batches"]
    status = invoke("status", batch["id"], "--base-url", standalone, "--api-key", "k")
    assert orjson.loads(status.stdout)["record_submitted"] == 10
    missing = invoke("cancel", "no-such-batch", "--base-url", standalone, "--api-key", "k")
    assert missing.exit_code == 1
    assert "BATCH_NOT_FOUND" in missing.stderr


def test_env_file_supplies_the_connection(
    tmp_path: Path, standalone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CSPARK_BASE_URL", raising=False)
    monkeypatch.delenv("CSPARK_API_KEY", raising=False)
    env = tmp_path / "spark.env"
    env.write_text(f"CSPARK_BASE_URL={standalone}\nCSPARK_API_KEY=secret-key\n")
    result = invoke("describe", "--env-file", str(env))
    assert result.exit_code == 0, result.output
    assert "secret-key" not in result.output
    result = invoke("describe", "--env-file", str(tmp_path / "nope.env"))
    assert result.exit_code == 2


def test_stdin_to_stdout_as_a_real_process() -> None:
    lines = "\n".join(orjson.dumps({"k": i}).decode() for i in range(20))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cspark_async.cli",
            "run",
            ECHO,
            "-i",
            "-",
            "-o",
            "-",
            "--emulate",
            "-q",
        ],
        input=lines,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert [orjson.loads(x)["output"]["k"] for x in proc.stdout.splitlines()] == list(range(20))


def test_the_output_is_never_the_input_and_an_existing_output_is_kept(
    tmp_path: Path,
) -> None:
    source = write_csv(tmp_path / "in.csv", 5)
    result = invoke("run", ECHO, "-i", str(source), "-o", str(source), "--emulate")
    assert result.exit_code == 2
    assert "is the input file" in result.stderr
    assert len(source.read_text().splitlines()) == 6  # untouched
    out = tmp_path / "out.jsonl"
    out.write_text('{"previous": "results"}\n')
    result = invoke("run", ECHO, "-i", str(source), "-o", str(out), "--emulate")
    assert result.exit_code == 2
    assert "already exists and is not empty: --force replaces it" in result.stderr
    assert out.read_text() == '{"previous": "results"}\n'
    # A new run that fails before its first record leaves nothing behind.
    out.unlink()
    result = invoke("run", "nope/missing", "-i", str(source), "-o", str(out), "--emulate")
    assert result.exit_code == 1
    assert "SERVICE_NOT_FOUND" in result.stderr
    assert not out.exists()
    assert not (tmp_path / "out.jsonl.checkpoint").exists()


def test_csv_output_keeps_columns_the_header_did_not_name(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"a": 1}\n{"a": 2, "b": 3}\n')
    out = tmp_path / "out.csv"
    assert invoke("run", ECHO, "-i", str(source), "-o", str(out), "--emulate").exit_code == 0
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["output.a"] == "1"
    assert rows[1]["output.a"] == "2"
    assert orjson.loads(rows[1]["extra"]) == {"output.b": 3}
