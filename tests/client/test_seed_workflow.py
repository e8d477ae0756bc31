"""The official documentation's Workflow Example, ported in examples/seed_workflow.py, runs
against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed_workflow.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSPARK_")}
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_seed_workflow_with_an_inputs_file(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.json"
    outputs = tmp_path / "outputs.json"
    rows = [["sale_id", "price"], *([i, i * 1.5] for i in range(1, 321))]
    inputs.write_text(json.dumps(rows))
    done = _run(str(inputs), str(outputs))
    assert done.returncode == 0, done.stderr
    assert "assessed data PipelineStats(chunks=3, records=320" in done.stdout
    assert "consumed a total of 320 outputs" in done.stdout
    assert "'batch_status': 'closed'" in done.stdout
    results = json.loads(outputs.read_text())
    assert sorted(r["sale_id"] for r in results) == list(range(1, 321))
    assert all(r["price"] == r["sale_id"] * 1.5 for r in results)


def test_seed_workflow_builtin_sample() -> None:
    done = _run()
    assert done.returncode == 0, done.stderr
    assert "consumed a total of 500 outputs" in done.stdout
    assert done.stderr == ""
