"""Kill a `cspark-async run` job at seeded random moments, resume it each time, and check that
its output is byte-identical to an uninterrupted run's.

```bash
.venv/bin/python benchmarks/resume_kills.py                       # 200,000 records, 20 SIGKILLs
.venv/bin/python benchmarks/resume_kills.py --signal int          # Ctrl-C instead
.venv/bin/python benchmarks/resume_kills.py --batch-timeout       # the batch times out each time
.venv/bin/python benchmarks/resume_kills.py --records 5000 --kills 3 --json   # CI-sized
```

The emulator runs in its own process (it outlives the killed clients). Each kill comes once the
output has reached a seeded random size (plus a seeded random delay of up to 10 ms), so the
moments spread over the whole job (a kill that comes after the job completed is not
counted). Reported: whether the final output equals the reference
byte for byte, the records the server computed beyond the input (per kill; bounded by the
in-flight window), and the resume overhead (the job's wall time over all its runs, minus the
uninterrupted run's, per kill: process start, re-reading the input up to the resume point,
recomputing what was in flight).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

SERVICE = "my-folder/my-service"
CHUNK_SIZE = 100
MAX_IN_FLIGHT = 18  # the CLI's default for 8 workers (2 x workers + 2), fixed here to state it


def write_input(path: Path, records: int) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "score", "plan"])
        for i in range(records):
            writer.writerow([i, f"name-{i}", i / 8, ("bronze", "silver", "gold")[i % 3]])


def start_emulator(workers: int, latency_ms: float, idle_timeout: float) -> tuple[Any, str]:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "cspark_async.emulator", "--workers", str(workers),
            "--latency-ms", str(latency_ms), "--idle-timeout", str(idle_timeout),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def batch_summary(base_url: str, batch_id: str) -> dict[str, Any] | None:
    try:
        return get(f"{base_url}/api/v4/batch/{batch_id}")["data"]["summary"]  # type: ignore[no-any-return]
    except urllib.error.HTTPError:
        return None  # forgotten by the server


def every_batch(base_url: str) -> list[str]:
    described = get(f"{base_url}/api/v4/batch/status")
    return [e["id"] for e in described["in_progress_batches"] + described["recent_batches"]]


def batch_status(base_url: str, batch_id: str) -> str | None:
    """From the tenant's listing: it does not count as activity on the batch."""
    described = get(f"{base_url}/api/v4/batch/status")
    for entry in described["in_progress_batches"] + described["recent_batches"]:
        if entry["id"] == batch_id:
            return entry["data"]["batch_status"]  # type: ignore[no-any-return]
    return None


def command(source: Path, out: Path, base_url: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "cspark_async.cli", "run", SERVICE, "-i", str(source),
        "-o", str(out), "--base-url", base_url, "--api-key", "k", "-q",
        "--chunk-size", str(CHUNK_SIZE), "--max-in-flight", str(MAX_IN_FLIGHT), *extra,
    ]  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    how = signal.SIGINT if args.signal == "int" else signal.SIGKILL
    # Long enough that a live run never idles out; each kill then waits it out.
    idle_timeout = args.idle_timeout if args.batch_timeout else 1800.0
    with tempfile.TemporaryDirectory(prefix="resume-kills-") as tmp:
        work = Path(tmp)
        source, reference, out = work / "in.csv", work / "reference.jsonl", work / "out.jsonl"
        write_input(source, args.records)
        emulator, base_url = start_emulator(args.workers, args.latency_ms, idle_timeout)
        try:
            started = time.perf_counter()
            subprocess.run(command(source, reference, base_url), check=True)
            reference_s = time.perf_counter() - started
            reference_ids = set(every_batch(base_url))
            size = reference.stat().st_size
            targets = sorted(rng.uniform(0.02, 0.97) * size for _ in range(args.kills))
            batches: dict[str, dict[str, Any] | None] = {}
            job_s = 0.0
            missed = hung = 0
            for i, target in enumerate(targets):
                extra = ("--resume",) if i else ()
                begun = time.perf_counter()
                proc = subprocess.Popen(command(source, out, base_url, *extra))
                while proc.poll() is None and (not out.exists() or out.stat().st_size < target):
                    time.sleep(0.002)
                time.sleep(rng.uniform(0, 0.01))
                if proc.poll() is None:
                    proc.send_signal(how)
                else:
                    missed += 1  # it finished first (or got past the target meanwhile)
                try:
                    code = proc.wait(timeout=60)
                except subprocess.TimeoutExpired:  # did not stop on SIGINT: counted, killed
                    hung += 1
                    proc.kill()
                    code = proc.wait()
                job_s += time.perf_counter() - begun
                checkpoint = out.with_name(out.name + ".checkpoint")
                print(
                    f"kill {i + 1}: at {out.stat().st_size if out.exists() else 0:,} of "
                    f"{size:,} bytes, exit {code}",
                    file=sys.stderr,
                )
                if not checkpoint.exists():
                    missed += len(targets) - i - (code != 0)
                    break  # the job completed before this kill
                batch_id = json.loads(checkpoint.read_bytes())["batch_id"]
                if batch_id:
                    batches[batch_id] = batch_summary(base_url, batch_id)
                    if args.batch_timeout:
                        deadline = time.monotonic() + 30
                        while time.monotonic() < deadline and not str(
                            batch_status(base_url, batch_id)
                        ).endswith("_by_timeout"):
                            time.sleep(0.1)
            done = 0
            if checkpoint.exists():
                begun = time.perf_counter()
                done = subprocess.run(command(source, out, base_url, "--resume")).returncode
                job_s += time.perf_counter() - begun
            checkpoint = out.with_name(out.name + ".checkpoint")
            for batch_id in set(every_batch(base_url)) - reference_ids | set(batches):
                batches[batch_id] = batch_summary(base_url, batch_id) or batches.get(batch_id)
            identical = done == 0 and out.read_bytes() == reference.read_bytes()
        finally:
            emulator.send_signal(signal.SIGINT)
            emulator.communicate(timeout=30)
    kills = args.kills - missed
    computed = sum((s or {}).get("records_completed", 0) for s in batches.values())
    pushed = sum((s or {}).get("records_submitted", 0) for s in batches.values())
    return {
        "records": args.records,
        "kills": kills,
        "signal": args.signal,
        "batch_timeout": args.batch_timeout,
        "identical": identical,
        "hung_after_signal": hung,
        "batches": len(batches),
        "extra_computed_per_kill": (computed - args.records) / kills if kills else 0.0,
        "extra_pushed_per_kill": (pushed - args.records) / kills if kills else 0.0,
        "in_flight_window_records": MAX_IN_FLIGHT * CHUNK_SIZE,
        "reference_s": round(reference_s, 2),
        "job_s": round(job_s, 2),
        "overhead_per_resume_s": round((job_s - reference_s) / max(1, kills), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--signal", choices=("kill", "int"), default="kill")
    parser.add_argument("--batch-timeout", action="store_true", help="the batch times out")
    parser.add_argument("--idle-timeout", type=float, default=2.0, help="with --batch-timeout")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=0.02)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        width = max(map(len, result))
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    sys.exit(0 if result["identical"] else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
