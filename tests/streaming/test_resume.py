"""Resumable streams (`checkpoint=`): a job stopped part-way continues where its consumer
stopped, every record exactly once, on the same batch while it is open or on a fresh one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from cspark_async import AsyncClient, CheckpointError, FileCheckpoint, ResultStream
from cspark_async.emulator import Emulator

from .conftest import records

SERVICE = "t/tagged"


def batch_ids(emu: Emulator) -> list[str]:
    return [batch.id for batch in emu.engine.batches()]


def stream(spark: AsyncClient, store: FileCheckpoint, data: Any, **options: Any) -> ResultStream:
    options.setdefault("chunk_size", 10)
    options.setdefault("max_in_flight", 4)
    return spark.batches.stream_outputs(
        SERVICE, data, checkpoint=store, fingerprint=options.pop("fingerprint", "in-1"), **options
    )


async def consume(results: ResultStream, *, stop_after: int | None = None) -> list[int]:
    """The outputs' `n`, stopping (as a crash would) once `stop_after` results were taken;
    the last result taken is not committed (the consumer never asked for the next)."""
    seen: list[int] = []
    taken = 0
    async with results:
        async for result in results:
            taken += 1
            if stop_after is not None and taken > stop_after:
                break
            seen.extend(o["n"] for o in result.outputs)
    return seen


async def test_a_stopped_job_resumes_on_its_batch_and_yields_the_rest_once(
    stack: Callable[..., Any], tmp_path: Path
) -> None:
    store = FileCheckpoint(tmp_path / "job.ckpt")
    data = records(1000)
    async with stack(workers=4) as (emu, spark):
        first = stream(spark, store, data)
        head = await consume(first, stop_after=30)
        assert head == list(range(300))
        saved = orjson.loads((tmp_path / "job.ckpt").read_bytes())
        assert saved["committed"]["records"] == 300
        assert saved["complete"] is False
        batch_id = first.batch_id
        status = await spark.batches.of(batch_id).get_status()
        assert status.parsed.batch_status == "in_progress"  # left open for the resume

        second = stream(spark, store, data)
        rest = await consume(second)
        assert second.batch_id == batch_id  # re-attached
        assert head + rest == list(range(1000))
        # Only the chunks after the committed ones are read again.
        assert second.state.records_read == 700
        # The server computed at most the in-flight window (4 chunks) more than once, plus the
        # chunk that was yielded but not committed when the first run stopped.
        assert emu.engine.batch(batch_id).records_submitted <= 1000 + (4 + 1) * 10
        assert second.records_committed == 1000
        assert orjson.loads((tmp_path / "job.ckpt").read_bytes())["complete"] is True

        # A complete job yields nothing more and opens no batch.
        third = stream(spark, store, data)
        assert await consume(third) == []
        assert third.batch_id is None


@pytest.mark.parametrize("resume_window", [4, 1])
async def test_results_computed_meanwhile_are_pulled_not_computed_again(
    tmp_path: Path, resume_window: int
) -> None:
    store = FileCheckpoint(tmp_path / "job.ckpt")
    gate, last_pushed = asyncio.Event(), asyncio.Event()

    async def gated(record: dict[str, Any]) -> dict[str, Any]:
        if record["n"] == 40:  # chunk 4, the last the window lets out, is on the server
            last_pushed.set()
        if record["n"] >= 10:
            await gate.wait()
        return {"n": record["n"]}

    async with (
        Emulator(services={SERVICE: gated}, workers=8) as emu,
        AsyncClient(emu.base_url, api_key="k", logger=False) as spark,
    ):
        first = stream(spark, store, records(100))
        async with first as results:
            async for result in results:
                assert result.offset == 0
                results.commit()
                with anyio.fail_after(10):  # the window's 4 chunks pushed, their compute held
                    await last_pushed.wait()
                break
        gate.set()  # computed while no client runs
        # A narrower window on resume: results of chunks pushed before the restart may be
        # pulled before they are read again; they are kept for them, not dropped.
        second = stream(spark, store, records(100), max_in_flight=resume_window)
        rest = await consume(second)
        assert rest == list(range(10, 100))
        assert second.batch_id == first.batch_id
        assert second.state.duplicates_dropped == 0
        assert second.state.records_pushed == 50  # chunks 1-4 came from the server
        assert emu.engine.batch(first.batch_id).records_submitted == 100


async def test_a_closed_batch_means_a_fresh_one_with_the_same_chunks(
    stack: Callable[..., Any], tmp_path: Path
) -> None:
    store = FileCheckpoint(tmp_path / "job.ckpt")
    data = records(500)
    async with stack(workers=4) as (emu, spark):
        first = stream(spark, store, data, chunk_size=7)
        head = await consume(first, stop_after=11)
        await spark.batches.of(first.batch_id).cancel()

        second = stream(spark, store, data, chunk_size=7)
        rest = await consume(second)
        assert second.batch_id != first.batch_id
        assert head + rest == list(range(500))
        assert second.state.records_pushed == 500 - 77


async def test_an_expired_batch_means_a_fresh_one(
    stack: Callable[..., Any], tmp_path: Path
) -> None:
    store = FileCheckpoint(tmp_path / "job.ckpt")
    data = records(300)
    async with stack(workers=2, idle_timeout=0.2) as (emu, spark):
        first = stream(spark, store, data)
        head = await consume(first, stop_after=5)
        # The emulator's reaper times the idle batch out; it has no event to wait on.
        with anyio.fail_after(10):
            while not emu.engine.batch(first.batch_id).status.endswith("_by_timeout"):  # noqa: ASYNC110
                await anyio.sleep(0.02)
        second = stream(spark, store, data)
        rest = await consume(second)
        assert second.batch_id != first.batch_id
        assert head + rest == list(range(300))


async def test_unordered_jobs_resume_with_every_record_once(
    stack: Callable[..., Any], tmp_path: Path
) -> None:
    store = FileCheckpoint(tmp_path / "job.ckpt")
    data = records(800)
    async with stack(workers=4, record_latency=0.0005) as (emu, spark):
        seen: list[int] = []
        for stop in (7, 13, None):
            run = stream(spark, store, data, ordered=False, chunk_size=9, max_in_flight=8)
            seen += await consume(run, stop_after=stop)
        assert sorted(seen) == list(range(800))
        assert len(seen) == 800


async def test_meta_is_saved_with_the_position_it_belongs_to(
    stack: Callable[..., Any], tmp_path: Path
) -> None:
    store = FileCheckpoint(tmp_path / "job.ckpt")
    data = records(200)
    async with stack() as (emu, spark):
        first = stream(spark, store, data)
        written = 0
        async with first as results:
            async for result in results:
                written += len(result.outputs)
                results.commit({"written": written})
                if written == 50:
                    break
        second = stream(spark, store, data)
        async with second as results:
            assert results.checkpoint_meta == {"written": 50}
            assert results.records_committed == 50
            first_again = await anext(aiter(results))
            assert first_again.offset == 50


class SeekableRecords:
    """A source that can start at any record it reported a position for."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.read = 0
        self.at = 0

    def __iter__(self) -> Any:
        return self._from(0)

    def tell(self, count: int) -> Any:
        return {"n": count} if count == self.at else None

    def seek(self, count: int, position: Any) -> Any:
        assert position == {"n": count}
        return self._from(count)

    def _from(self, start: int) -> Any:
        for n in range(start, self.count):
            self.read += 1
            self.at = n + 1
            yield {"n": n}


async def test_a_seekable_source_is_not_read_past_again(
    stack: Callable[..., Any], tmp_path: Path
) -> None:
    store = FileCheckpoint(tmp_path / "job.ckpt")
    async with stack() as (emu, spark):
        head = await consume(stream(spark, store, SeekableRecords(400)), stop_after=20)
        source = SeekableRecords(400)
        rest = await consume(stream(spark, store, source))
        assert head + rest == list(range(400))
        assert source.read == 200


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"fingerprint": "in-2"}, "the input"),
        ({"chunk_size": 11}, "chunk_size"),
        ({"ordered": False}, "ordered"),
        ({"parameters": {"rate": 2}}, "parameters"),
    ],
)
async def test_a_checkpoint_of_another_job_is_refused(
    stack: Callable[..., Any], tmp_path: Path, change: dict[str, Any], named: str
) -> None:
    store = FileCheckpoint(tmp_path / "job.ckpt")
    data = records(100)
    async with stack() as (emu, spark):
        await consume(stream(spark, store, data), stop_after=2)
        batches = len(batch_ids(emu))
        with pytest.raises(CheckpointError, match=f"another job.*{named}"):
            await consume(stream(spark, store, data, **change))
        assert len(batch_ids(emu)) == batches  # nothing created


async def test_another_service_is_refused(stack: Callable[..., Any], tmp_path: Path) -> None:
    store = FileCheckpoint(tmp_path / "job.ckpt")
    async with stack(services={SERVICE: lambda r: r, "t/other": lambda r: r}) as (emu, spark):
        await consume(stream(spark, store, records(50)), stop_after=1)
        other = spark.batches.stream_outputs("t/other", records(50), checkpoint=store)
        with pytest.raises(CheckpointError, match="service: 't/tagged' there, 't/other' here"):
            await consume(other)


async def test_a_corrupt_checkpoint_is_refused(stack: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "job.ckpt"
    path.write_bytes(b'{"version": 1, "job": ')
    async with stack() as (emu, spark):
        with pytest.raises(CheckpointError, match="corrupt"):
            await consume(stream(spark, FileCheckpoint(path), records(10)))
        assert batch_ids(emu) == []
    assert path.read_bytes() == b'{"version": 1, "job": '  # left as it was


async def test_a_batch_the_server_forgot_is_refused(tmp_path: Path) -> None:
    store = FileCheckpoint(tmp_path / "job.ckpt")
    services = {SERVICE: lambda r: r}
    async with (
        Emulator(services=services) as emu,
        AsyncClient(emu.base_url, api_key="k", logger=False) as spark,
    ):
        await consume(stream(spark, store, records(100)), stop_after=2)
    async with (
        Emulator(services=services) as emu,  # a server that never saw the batch
        AsyncClient(emu.base_url, api_key="k", logger=False) as spark,
    ):
        with pytest.raises(CheckpointError, match="no longer knows"):
            await consume(stream(spark, store, records(100)))


async def test_the_readme_recipe_writes_every_record_once_across_crashes(
    stack: Callable[..., Any], tmp_path: Path
) -> None:
    """The README's ingestion recipe, crashing twice (once mid-line) before completing."""
    store = FileCheckpoint(tmp_path / "prices.jsonl.checkpoint")
    target = tmp_path / "prices.jsonl"

    async def job(spark: AsyncClient, crash_after: int | None) -> None:
        with target.open("ab") as out:
            async with stream(spark, store, records(600)) as results:
                out.truncate((results.checkpoint_meta or {}).get("bytes", 0))
                async for result in results:
                    for offset, _, output, _ in result.items():
                        out.write(orjson.dumps({"offset": offset, "output": output}) + b"\n")
                    out.flush()
                    results.commit({"bytes": out.tell()})
                    if crash_after is not None and result.offset >= crash_after:
                        out.write(b'{"offset": 1')  # dies mid-line, after the commit
                        out.flush()
                        return

    async with stack() as (emu, spark):
        await job(spark, crash_after=100)
        await job(spark, crash_after=400)
        await job(spark, crash_after=None)
        await store.clear()
    lines = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    assert [line["offset"] for line in lines] == list(range(600))
    assert [line["output"]["n"] for line in lines] == list(range(600))
    assert not (tmp_path / "prices.jsonl.checkpoint").exists()


@pytest.mark.parametrize("last", ["save", "clear"])
async def test_a_save_whose_thread_runs_late_never_lands_over_a_later_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, last: str
) -> None:
    # A cancelled caller leaves its save running in a thread; threads may then run in any
    # order. Here each thread runs only when the test says, the stale one last.
    store = FileCheckpoint(tmp_path / "job.ckpt")
    threads: list[Callable[[], Any]] = []

    async def deferred(fn: Callable[..., Any], *args: Any) -> None:
        threads.append(lambda: fn(*args))

    monkeypatch.setattr(asyncio, "to_thread", deferred)
    await store.save({"n": 1})
    await (store.save({"n": 2}) if last == "save" else store.clear())
    monkeypatch.undo()
    threads[1]()
    threads[0]()  # the stale save
    assert await store.load() == ({"n": 2} if last == "save" else None)


async def test_a_save_that_failed_does_not_hold_back_an_earlier_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileCheckpoint(tmp_path / "job.ckpt")
    threads: list[Callable[[], Any]] = []

    async def deferred(fn: Callable[..., Any], *args: Any) -> None:
        threads.append(lambda: fn(*args))

    await store.save({"n": 0})
    monkeypatch.setattr(asyncio, "to_thread", deferred)
    await store.save({"n": 1})
    await store.save({"n": 2})
    monkeypatch.undo()
    tmp = tmp_path / "job.ckpt.tmp"
    tmp.mkdir()  # the later save cannot write its temporary file
    with pytest.raises(IsADirectoryError):
        threads[1]()
    tmp.rmdir()
    threads[0]()
    assert await store.load() == {"n": 1}
