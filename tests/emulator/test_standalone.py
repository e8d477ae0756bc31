"""The standalone emulator process and the shipped demo service and dataset."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import orjson
import pytest

from cspark_async.emulator import Emulator, premium, sample_dataset


def test_python_m_emulator_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cspark_async.emulator", "--workers", "3", "--tenant", "acme"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/acme")
        with urllib.request.urlopen(base_url + "/api/v4/batch/status", timeout=5) as resp:
            body = orjson.loads(resp.read())
        assert body["tenant"]["configuration"]["max_workers"] == 3
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert stderr == ""


def test_python_m_emulator_fault_and_compression_flags() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cspark_async.emulator",
            "--no-compression",
            "--fault-error-after",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        api = proc.stdout.readline().strip() + "/api/v4/batch"
        request = urllib.request.Request(
            api, data=b'{"service": "my-folder/my-service"}', method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        info.value.close()
        assert info.value.code in (502, 504)  # applied, then a gateway error
        root = api.split("/emulator/")[0]
        clear = urllib.request.Request(root + "/_emulator/faults", data=b"{}", method="PUT")
        urllib.request.urlopen(clear, timeout=5).close()
        for _ in range(4):
            urllib.request.urlopen(request, timeout=5).close()
        described = urllib.request.Request(api + "/status", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(described, timeout=5) as resp:
            assert "Content-Encoding" not in resp.headers  # --no-compression
            raw = resp.read()
        assert len(raw) > 1024  # big enough to be compressed otherwise
        assert len(orjson.loads(raw)["in_progress_batches"]) == 5  # the faulted create too
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr


def test_python_m_emulator_reports_a_busy_port_in_one_line() -> None:
    first = subprocess.Popen(
        [sys.executable, "-m", "cspark_async.emulator"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert first.stdout is not None
        port = first.stdout.readline().strip().split(":")[2].split("/")[0]
        second = subprocess.run(
            [sys.executable, "-m", "cspark_async.emulator", "--port", port],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert second.returncode == 2
        assert second.stderr.startswith("emulator: ")
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=10)


def test_sample_dataset_runs_through_the_demo_service() -> None:
    with sample_dataset().open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5000
    ok, failed = 0, 0
    for row in rows:
        try:
            out = premium(row)
        except ValueError:
            failed += 1
        else:
            ok += 1
            assert out["annual_premium"] > 0
            assert out["monthly_premium"] == pytest.approx(out["annual_premium"] / 12, abs=0.01)
    assert (ok, failed) == (4990, 10)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"age": 17, "cover": 1, "term": 10}, "age 17"),
        ({"age": 30, "cover": 0, "term": 10}, "cover must be positive"),
        ({"age": 30, "cover": 1, "term": 41}, "term 41"),
        ({"age": 30, "cover": 1, "term": 10, "plan": "x"}, "unknown plan"),
        ({"age": "old", "cover": 1, "term": 10}, "'age' must be a number"),
        ({"cover": 1, "term": 10}, "missing input 'age'"),
    ],
)
def test_demo_service_explains_bad_records(record: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        premium(record)


def test_smokers_and_older_people_pay_more() -> None:
    base = {"age": 30, "cover": 100_000, "term": 10, "plan": "silver", "smoker": "no"}
    older = premium({**base, "age": 60})["annual_premium"]
    smoker = premium({**base, "smoker": "yes"})["annual_premium"]
    plain = premium(base)["annual_premium"]
    assert older > plain
    assert smoker == pytest.approx(2 * plain, abs=0.02)


@pytest.mark.parametrize(
    "credentials",
    [{}, {"api_key": "k3y"}, {"token": "t0k"}, {"oauth_clients": {"app": "s3cret"}}],
    ids=["open", "api-key", "token", "oauth"],
)
async def test_emulator_client_carries_the_enforced_credential(credentials: dict[str, Any]) -> None:
    async with Emulator(**credentials) as emu, emu.client() as spark:
        described = await spark.batches.describe()
        assert described.status == 200


@pytest.mark.parametrize("host_froze", [False, True])
async def test_serving_tunes_the_collector_only_while_it_serves(host_froze: bool) -> None:
    # In-process (a test's CliRunner, an app) the host's collector must be left as it was,
    # objects the host froze itself included.
    import gc
    import os

    from cspark_async.emulator._serve import serve_forever

    gc.unfreeze()
    if host_froze:
        gc.freeze()
    try:
        before, frozen = gc.get_threshold(), gc.get_freeze_count()
        during: list[tuple[int, ...]] = []

        def ready(url: str) -> None:
            during.append(gc.get_threshold())
            os.kill(os.getpid(), signal.SIGTERM)  # what ends a standalone emulator

        await serve_forever(Emulator(), ready)
        assert during == [(50_000, 20, 10)]
        assert gc.get_threshold() == before
        # Still frozen (a few frozen objects may have been freed meanwhile, by refcount).
        assert 0.9 * frozen <= gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
