"""`benchmarks/run.py --quick` still runs end to end, so the benchmark suite cannot rot.

Only the shape of the results is checked, and that cspark_async delivered every record:
timings are never asserted (the machine is shared and they say nothing about correctness).
It needs one interpreter, not every one: `.ci/run` sets SKIP_BENCHMARK_SMOKE=1 on the others.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

EXPECTED = {
    "latency_bound": {"ours_default", "ours_tuned", "official_sync_seed", "official_async_gather"},
    "throughput_bound": {
        "ours_default",
        "ours_tuned",
        "official_sync_seed",
        "official_async_gather",
        "hand_loop",
        "floor",
    },
    "buffer_10x": {"ours_default", "ours_tuned", "official_sync_seed", "official_async_gather"},
    "memory": {"ours_small", "ours_large"},
    "loop_stall": {"ours_default", "ours_chunk2000"},
    "small_chunks": {
        f"{who}_chunk{size}" for who in ("ours", "official_async") for size in (10, 200, 1000)
    },
}


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("SKIP_BENCHMARK_SMOKE") == "1",
    reason="SKIP_BENCHMARK_SMOKE=1: the benchmark smoke test runs on CI's default Python only",
)
def test_quick_benchmark_runs_and_reports_every_contender(tmp_path: Path) -> None:
    committed = [ROOT / "benchmarks" / "results" / "latest.json", ROOT / "benchmarks" / "README.md"]
    before = [p.stat().st_mtime_ns if p.exists() else None for p in committed]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["meta"]["mode"] == "quick"
    assert set(results["scenarios"]) == set(EXPECTED)
    for scenario, contenders in EXPECTED.items():
        got = results["scenarios"][scenario]["contenders"]
        assert set(got) == contenders, scenario
        for key, entry in got.items():
            assert entry["runs"], (scenario, key)  # recorded, failed or not
            if entry["contender"] == "ours":  # ours must deliver every record, every time
                assert entry["ok"], (scenario, key, entry["errors"])
                assert all(r["records_out"] == r["records"] for r in entry["runs"])
    # The hand loop also delivers every record; the stall scenario names what ran.
    assert all(r["ok"] for r in results["scenarios"]["throughput_bound"]["contenders"][
        "hand_loop"]["runs"])
    for entry in results["scenarios"]["loop_stall"]["contenders"].values():
        assert all(r["stall_ticks"] > 0 and r["stall_cause"] for r in entry["runs"])
    # One table a scenario, and the stall scenario's own table of stalls.
    assert (tmp_path / "results.md").read_text().count("| contender |") == len(EXPECTED) + 1
    # The committed results and the README are left alone.
    assert [p.stat().st_mtime_ns if p.exists() else None for p in committed] == before
