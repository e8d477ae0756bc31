"""cspark-async benchmarks: every scenario, every contender, one command.

    python benchmarks/run.py [--quick] [--repeat N] [--out DIR] [--only SCENARIO ...]
                             [--profile SCENARIO]

Writes DIR/latest.json, DIR/results.md and DIR/chart.png (when matplotlib is installed: the
`bench` extra), and, for a full run into the default DIR, the results section of
benchmarks/README.md. See that README for what each scenario measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _emulator import EmulatorProcess  # noqa: E402
from report import write_outputs  # noqa: E402
from scenarios import Entry, Scenario, scenarios  # noqa: E402

DEFAULT_OUT = HERE / "results"


def _child(spec: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its prints go to /dev/null."""
    with tempfile.TemporaryDirectory(prefix="cspark-bench-") as tmp:
        spec_path, result_path = Path(tmp, "spec.json"), Path(tmp, "result.json")
        spec_path.write_text(json.dumps(spec))
        try:
            proc = subprocess.run(
                [sys.executable, str(HERE / "_child.py"), str(spec_path), str(result_path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"timed out after {timeout_s:.0f} s"}
        if not result_path.exists():
            tail = (proc.stderr or "").strip().splitlines()[-3:]
            return {"ok": False, "error": f"child exited {proc.returncode}: {' | '.join(tail)}"}
        result: dict[str, Any] = json.loads(result_path.read_text())
        return result


def _summarise(entry: Entry, runs: list[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in runs if r.get("ok")]
    errors = sorted({r["error"] for r in runs if not r.get("ok") and r.get("error")})
    summary: dict[str, Any] = {
        "label": entry.label,
        "contender": entry.contender,
        "options": entry.options,
        "records": entry.n,
        "source": entry.source,
        "ok": bool(runs) and len(good) == len(runs),
        "runs_ok": len(good),
        "runs": runs,
        "errors": errors,
    }
    if not good:
        return summary
    keys = sorted({k for r in good for k, v in r.items() if isinstance(v, (int, float))
                   and not isinstance(v, bool)})
    median = {k: statistics.median(r[k] for r in good if k in r) for k in keys}
    if "wall_s" in median and median.get("records"):
        median["records_per_s"] = median["records"] / median["wall_s"]
        median["cpu_s_per_100k"] = median["cpu_s"] * 100_000 / median["records"]
    summary["median"] = median
    summary["min_wall_s"] = min((r["wall_s"] for r in good if "wall_s" in r), default=None)
    summary["max_wall_s"] = max((r["wall_s"] for r in good if "wall_s" in r), default=None)
    return summary


def run_scenario(sc: Scenario, repeat: int, log: Any) -> dict[str, Any]:
    """Start one emulator, then run every contender `repeat` times, interleaved (so that a
    noisy moment on the shared cores hits every contender alike), resetting it in between."""
    runs: dict[str, list[dict[str, Any]]] = {e.key: [] for e in sc.entries}
    started = time.monotonic()
    with EmulatorProcess(**sc.emulator) as emu:
        for rep in range(repeat):
            for entry in sc.entries:
                emu.reset()
                cpu0 = emu.cpu_seconds()
                spec = {
                    "contender": entry.contender,
                    "url": emu.url,
                    "n": entry.n or sc.n,
                    "source": entry.source,
                    "options": entry.options,
                }
                result = _child(spec, sc.timeout_s)
                cpu1 = emu.cpu_seconds()
                if cpu0 is not None and cpu1 is not None and entry.contender != "floor":
                    result["emulator_cpu_s"] = cpu1 - cpu0
                result["repetition"] = rep
                runs[entry.key].append(result)
                log(_line(sc, entry, result))
    contenders = {e.key: _summarise(e, runs[e.key]) for e in sc.entries}
    for e in sc.entries:
        contenders[e.key]["records"] = e.n or sc.n
    return {
        "title": sc.title,
        "measures": sc.measures,
        "records": sc.n,
        "emulator": sc.emulator,
        "bounds": _bounds(sc),
        "contenders": contenders,
        "elapsed_s": time.monotonic() - started,
    }


def _bounds(sc: Scenario) -> dict[str, Any]:
    bounds: dict[str, Any] = {"compute_bound_s": sc.compute_bound_s()}
    if sc.latency_ms:
        sizes = sorted({e.options.get("chunk_size", 200) for e in sc.entries} | {150, 200})
        bounds["chunked_bound_s"] = {str(c): sc.chunked_bound_s(c) for c in sizes}
    return bounds


def _line(sc: Scenario, entry: Entry, r: dict[str, Any]) -> str:
    head = f"  {sc.key:<17} {entry.key:<26} #{r['repetition'] + 1}"
    if not r.get("ok"):
        return f"{head}  FAILED: {r.get('error')}"
    if entry.contender == "floor":
        return (f"{head}  orjson {r['orjson_cpu_s_per_100k']:.3f} / stdlib "
                f"{r['stdlib_cpu_s_per_100k']:.3f} CPU s per 100k")
    return (f"{head}  wall {r['wall_s']:.2f} s  cpu {r['cpu_s']:.2f} s  "
            f"rss {r['rss_peak_mib']:.0f} MiB  emu cpu {r.get('emulator_cpu_s', 0):.2f} s")


def profile(sc: Scenario, out: Path, log: Any) -> None:
    """Run cspark_async's entries of one scenario once under a profiler; text reports in out."""
    with EmulatorProcess(**sc.emulator) as emu:
        for entry in sc.entries:
            if entry.contender != "ours":
                continue
            path = out / f"profile-{sc.key}-{entry.key}.txt"
            spec = {"contender": "ours", "url": emu.url, "n": entry.n or sc.n,
                    "source": entry.source, "options": entry.options, "profile": str(path)}
            emu.reset()
            result = _child(spec, sc.timeout_s * 3)
            log(f"  profiled {sc.key}/{entry.key}: {result.get('error') or 'ok'} -> {path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, 1 repetition (< 1 min)")
    p.add_argument("--repeat", type=int, help="repetitions per contender (default 3; quick 1)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    p.add_argument("--only", nargs="+", metavar="SCENARIO", help="run only these scenarios")
    p.add_argument("--profile", metavar="SCENARIO", help="profile cspark_async in one scenario")
    p.add_argument("--no-readme", action="store_true", help="leave benchmarks/README.md alone")
    args = p.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    if repeat < 1:
        p.error("--repeat must be at least 1")
    all_scenarios = scenarios(args.quick)
    known = [s.key for s in all_scenarios]
    for name in (args.only or []) + ([args.profile] if args.profile else []):
        if name not in known:
            p.error(f"unknown scenario {name!r}; choose from {', '.join(known)}")
    measured = _measured_package()
    if measured != HERE.parent / "cspark_async":
        # The children import cspark_async as installed: an install of another tree (a stale
        # editable link, a release from PyPI) would be measured under this checkout's name.
        p.error(f"this Python imports cspark_async from {measured}, not this checkout's; "
                f"run `pip install -e {HERE.parent}` first")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, flush=True)

    if args.profile:
        profile(next(s for s in all_scenarios if s.key == args.profile), out, log)
        return 0

    selected = [s for s in all_scenarios if not args.only or s.key in args.only]
    started = time.monotonic()
    results: dict[str, Any] = {
        "meta": {
            "mode": "quick" if args.quick else "full",
            "repeat": repeat,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "versions": _versions(),
            "git": _git(),
        },
        "scenarios": {},
    }
    for sc in selected:
        log(f"{sc.key}: {sc.title}")
        results["scenarios"][sc.key] = run_scenario(sc, repeat, log)
    results["meta"]["elapsed_s"] = time.monotonic() - started
    if args.only:
        results = _merge(out / "latest.json", results, args.only)
    complete = set(results["scenarios"]) == set(known)
    readme = None
    if not args.no_readme and not args.quick and complete and out == DEFAULT_OUT:
        readme = HERE / "README.md"
    written = write_outputs(results, out, readme)
    log(f"done in {results['meta']['elapsed_s']:.0f} s; wrote {', '.join(map(str, written))}")
    return 0


def _merge(previous: Path, fresh: dict[str, Any], rerun: list[str]) -> dict[str, Any]:
    """`--only`: replace those scenarios in the previous results of the same mode (a noisy
    scenario is rerun without redoing the rest); the rerun is noted in `meta.reruns`."""
    if not previous.exists():
        return fresh
    old: dict[str, Any] = json.loads(previous.read_text())
    if old.get("meta", {}).get("mode") != fresh["meta"]["mode"]:
        return fresh
    old["scenarios"].update(fresh["scenarios"])
    old["meta"].setdefault("reruns", []).append({
        "scenarios": rerun,
        "started_at": fresh["meta"]["started_at"],
        "repeat": fresh["meta"]["repeat"],
        "elapsed_s": fresh["meta"]["elapsed_s"],
    })
    return old


def _git() -> dict[str, Any]:
    """The commit measured, and whether the work tree differed from it (uncommitted edits)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    status = git("status", "--porcelain", "--", str(HERE.parent / "cspark_async"))
    return {"commit": git("rev-parse", "--short", "HEAD") or None, "dirty": bool(status)}


def _measured_package() -> Path:
    """Where the children's `import cspark_async` resolves: asked of a Python started the way
    they are (benchmarks/ first on sys.path, not the caller's directory), without importing."""
    probe = ("import importlib.util; s = importlib.util.find_spec('cspark_async'); "
             "print(s.origin if s and s.origin else '')")
    found = subprocess.run([sys.executable, "-c", probe], cwd=HERE, capture_output=True,
                           text=True, timeout=60).stdout.strip()
    if not found:
        return Path("(nowhere: cspark_async is not installed)")
    return Path(found).resolve().parent


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("cspark-async", "cspark", "aiohttp", "httpx", "orjson", "anyio"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found


if __name__ == "__main__":
    sys.exit(main())
