"""The `run` and `demo` jobs: a file through `spark.batches.stream_outputs`, into files."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from attrs import define, field, frozen
from tqdm import tqdm

from .._batches import create_body
from .._client import AsyncClient
from .._exceptions import SparkError
from .._streaming._checkpoint import CheckpointStore, FileCheckpoint
from .._streaming._state import StreamState
from .._types import CreateOptions
from ..emulator import Emulator
from ._formats import Format, InputError
from ._read import BadRow, BadRowPolicy, Counted, RecordReader, count_records
from ._resume import (
    RESUMABLE_FORMATS,
    ForgetBatch,
    ResumeMode,
    check_resumed_job,
    check_start,
    checkpoint_path,
    fingerprint,
)
from ._values import ColumnTypes
from ._write import Resume, Writer, leftovers, open_writer, settle, special

__all__ = ["Connection", "JobSummary", "Source", "run_job"]

log = logging.getLogger("cspark_async.cli")

# A closed batch becomes completed (or failed) once its last chunk is processed; every result
# has been pulled by then, so this is a short wait. When (or whether) a tenant moves a closed
# batch on is undocumented, so the wait is short and `closed` counts as a good end.
_FINAL_STATUS_WAIT_S: Final = 3.0
_SETTLED: Final = frozenset(
    {"completed", "failed", "cancelled", "completed_by_timeout", "closed_by_timeout"}
)
_GOOD_ENDS: Final = frozenset({"completed", "closed"})


@frozen(kw_only=True)
class Connection:
    """Where to run: a tenant, or an in-process emulator (`emulate`)."""

    base_url: str | None = None
    api_key: str | None = None
    token: str | None = None
    emulate: bool = False
    emulator_workers: int = 8
    emulator_latency_s: float = 0.0
    log_requests: bool = False

    def __repr__(self) -> str:  # credentials stay out of reprs
        return f"Connection(base_url={self.base_url!r}, emulate={self.emulate})"


@frozen(kw_only=True)
class Source:
    """What to read and how."""

    path: str
    format: Format | None  # None: stdin, sniffed
    encoding: str | None = None
    columns: ColumnTypes = field(factory=ColumnTypes)
    on_bad_row: BadRowPolicy = "abort"


@define
class JobSummary:
    records: int = 0
    failed: int = 0
    skipped: int = 0  # bad rows, never sent
    seconds: float = 0.0
    batch_id: str | None = None
    batch_status: str | None = None
    completed: bool = False
    resumed: int = 0  # records an earlier run of the job had written
    resumable: bool = False  # a checkpoint keeps the job's progress
    moved: bool = False  # only settled a finished job's output (its run was stopped doing so)

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Every record read and computed, and the batch ended well (or was never needed)."""
        return (
            self.completed
            and not self.failed
            and not self.skipped
            and (self.batch_status is None or self.batch_status in _GOOD_ENDS)
        )


@contextlib.asynccontextmanager
async def connect(connection: Connection) -> AsyncIterator[AsyncClient]:
    logger: logging.Logger | bool = (
        logging.getLogger("cspark_async") if (connection.log_requests) else False
    )
    if connection.emulate:
        async with (
            Emulator(
                workers=connection.emulator_workers,
                record_latency=connection.emulator_latency_s,
            ) as emu,
            AsyncClient(emu.base_url, api_key="emulator", logger=logger) as spark,
        ):
            yield spark
        return
    async with AsyncClient(
        connection.base_url, api_key=connection.api_key, token=connection.token, logger=logger
    ) as spark:
        yield spark


async def run_job(
    *,
    service: str,
    source: Source,
    output_path: str,
    output_format: Format,
    connection: Connection,
    errors_path: str | None = None,
    chunk_size: int | None = None,
    max_in_flight: int | None = None,
    include_inputs: bool = False,
    acceptable_errors: int | None = None,
    show_progress: bool = True,
    summary: JobSummary | None = None,
    resume: ResumeMode | None = None,
) -> JobSummary:
    """Stream one file through a service. `summary` is filled in as it runs, so a caller that
    is interrupted or fails still knows how far it got, and which batch it was.

    `resume` makes the run resumable (a file output, a file input): 'new' starts the job,
    'resume' continues it from its checkpoint, 'force' starts it over."""
    summary = summary or JobSummary()
    if resume is not None:
        check_start(resume, output_path, output_format)
    total = count_records(source.path, source.format or "jsonl", source.encoding)
    create: CreateOptions = {}
    if acceptable_errors is not None:
        create["accuracy"] = _accuracy(acceptable_errors)
    started = time.monotonic()
    job = await _resumable(
        resume,
        service=service,
        source=source,
        output_path=output_path,
        output_format=output_format,
        errors_path=errors_path,
        chunk_size=chunk_size,
        include_inputs=include_inputs,
        emulated=connection.emulate,
    )
    meta = job.meta if job is not None else None
    summary.resumable = job is not None
    if meta:
        summary.records, summary.failed = int(meta["records"]), int(meta["failed"])
        summary.skipped = int(meta["skipped"])
        summary.resumed = summary.records
    if job is not None and meta and meta.get("settling"):
        # The job had finished and was stopped while its output moved into place.
        await _settle(job, output_path)
        summary.completed = summary.moved = True
        return summary
    with (
        _writers(output_path, output_format, errors_path, job) as (out, errors),
        _bar(total, show_progress, initial=summary.records + summary.skipped) as bar,
    ):

        def skip(row: BadRow) -> None:
            summary.skipped += 1
            if errors is not None:
                errors.write(row.as_error())
            bar.update(1)

        reader = RecordReader(
            source.path,
            source.format,
            columns=source.columns,
            encoding=source.encoding,
            on_bad_row=source.on_bad_row,
            bad_rows=skip,
        )
        reader.reported = summary.skipped  # in --errors already: not reported again
        records = reader if total is None else Counted(reader, total)

        def progress(state: StreamState) -> None:
            bar.set_postfix(failed=state.records_failed, refresh=False)

        async with connect(connection) as spark:
            stream = spark.batches.stream_outputs(
                service,
                records,
                create=create,
                chunk_size=chunk_size,
                max_in_flight=max_in_flight,
                progress=progress,
                checkpoint=job.sdk_store if job is not None else None,
                fingerprint=job.fingerprint if job is not None else None,
            )
            try:
                async with stream as results:
                    if job is not None:
                        summary.batch_id = stream.batch_id
                    async for result in results:
                        summary.batch_id = stream.batch_id
                        for offset, record, output, error in result.items():
                            line: dict[str, Any] = {"offset": offset}
                            if include_inputs:
                                line["input"] = record
                            line["output"] = output
                            line["error"] = error
                            out.write(line)
                            if error is not None and errors is not None:
                                errors.write({"offset": offset, "input": record, "error": error})
                        out.flush()
                        summary.records += result.records
                        summary.failed += result.failed
                        if job is not None:  # this output is finished with: recorded
                            results.commit(_meta(summary, out, errors))
                        bar.update(result.records)
                summary.completed = True
            except (InputError, SparkError) as exc:
                summary.batch_id = stream.batch_id
                if isinstance(exc, InputError) and job is not None and summary.batch_id:
                    # The input cannot go on as it is: its batch is of no use to a resume.
                    await _cancel(spark, summary.batch_id)
                summary.batch_status = await _final_status(spark, summary.batch_id, wait_s=0)
                raise
            finally:
                reader.close()
                summary.batch_id = stream.batch_id
                summary.seconds = time.monotonic() - started
            summary.batch_status = await _final_status(
                spark, summary.batch_id, wait_s=_FINAL_STATUS_WAIT_S
            )
        if total is not None and not bar.disable and bar.total != bar.n:
            bar.total = bar.n  # the count was an estimate (blank lines): end at 100 %
            bar.refresh()
    if job is not None:
        await _settle(job, output_path)
    return summary


async def _settle(job: _Job, output_path: str) -> None:
    """The output is whole: mark the checkpoint `settling` (a resume then finishes this step,
    with the job's own counts, instead of cutting the output back to its recorded length),
    move the output's final form into place, then remove the checkpoint."""
    loaded = await job.store.load()
    meta = loaded.get("meta") if loaded is not None else None
    if loaded is not None and isinstance(meta, dict) and not meta.get("settling"):
        await job.store.save({**loaded, "meta": {**meta, "settling": True}})
    settle(output_path)
    await job.store.clear()


@frozen
class _Job:
    """A resumable run: its checkpoint store and the job's identity, and what the run it
    resumes recorded (`meta`: the writers' state and the counts; None for a new job)."""

    store: FileCheckpoint
    sdk_store: CheckpointStore
    fingerprint: str
    meta: Mapping[str, Any] | None


async def _resumable(
    mode: ResumeMode | None,
    *,
    service: str,
    source: Source,
    output_path: str,
    output_format: Format,
    errors_path: str | None,
    chunk_size: int | None,
    include_inputs: bool,
    emulated: bool,
) -> _Job | None:
    """The job's checkpoint, checked before any file is touched (after `check_start`); None
    when the run cannot be resumed (stdin, stdout, Parquet) and was not asked to be."""
    if mode is None:
        return None
    if mode == "force" and output_path != "-" and not special(Path(output_path)):
        # Starting over, resumable or not: what an earlier job left beside the output goes
        # first, its checkpoint last, so that a kill in between leaves nothing that looks
        # like a job to resume or settle.
        for path in leftovers(output_path):
            path.unlink(missing_ok=True)
        await FileCheckpoint(checkpoint_path(output_path)).clear()
    if (
        source.path == "-"
        or output_path == "-"
        or special(Path(output_path))
        or output_format not in RESUMABLE_FORMATS
    ):
        return None
    store = FileCheckpoint(checkpoint_path(output_path))
    options = {
        "format": source.format,
        "encoding": source.encoding,
        "columns": source.columns.types,
        "infer": source.columns.infer,
        "on_bad_row": source.on_bad_row,
        "include_inputs": include_inputs,
        "output": output_format,
        "errors": errors_path is not None,
    }
    print_ = fingerprint(source.path, options)
    meta = None
    if mode == "resume":
        meta = await check_resumed_job(
            store,
            service=create_body(service)["service"],
            input_fingerprint=print_,
            chunk_size=chunk_size,
        )
    # An in-process emulator dies with its run: its batch cannot be re-attached.
    sdk_store: CheckpointStore = ForgetBatch(store) if emulated else store
    return _Job(store, sdk_store, print_, meta)


def _meta(summary: JobSummary, out: Writer, errors: Writer | None) -> dict[str, Any]:
    """What a resume needs, as of the results written so far."""
    return {
        "out": out.state(),
        "errors": errors.state() if errors is not None else None,
        "records": summary.records,
        "failed": summary.failed,
        "skipped": summary.skipped,
    }


async def _cancel(spark: AsyncClient, batch_id: str) -> None:
    try:
        await asyncio.wait_for(spark.batches.of(batch_id).cancel(), 10.0)
    except (SparkError, asyncio.TimeoutError) as exc:
        log.debug("could not cancel batch %s: %s", batch_id, exc)


def _accuracy(acceptable_errors_pct: int) -> float:
    """`--acceptable-errors PCT` as `create(accuracy=)`, which sends it back as PCT."""
    return (100 - acceptable_errors_pct) / 100


async def _final_status(spark: AsyncClient, batch_id: str | None, *, wait_s: float) -> str | None:
    """The batch's status on the server once it settles (or `wait_s` runs out); None when
    there was no batch or it cannot be read (the run's own outcome matters more)."""
    if batch_id is None:
        return None
    try:
        # Bounded whatever the client's retries: after a failed run the server may be gone.
        return await asyncio.wait_for(_settled_status(spark, batch_id, wait_s), wait_s + 5.0)
    except asyncio.TimeoutError:
        return None


async def _settled_status(spark: AsyncClient, batch_id: str, wait_s: float) -> str | None:
    deadline = time.monotonic() + wait_s
    delay = 0.05
    status: str | None = None
    try:
        while True:
            status = (await spark.batches.of(batch_id).get_info()).parsed.batch_status
            if status in _SETTLED or time.monotonic() + delay > deadline:
                return status
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 2)
    except SparkError as exc:
        log.debug("could not read the final status of batch %s: %s", batch_id, exc)
        return status


@contextlib.contextmanager
def _writers(
    output_path: str, output_format: Format, errors_path: str | None, job: _Job | None
) -> Iterator[tuple[Writer, Writer | None]]:
    meta = job.meta if job is not None else None
    out = open_writer(output_path, output_format, _resume(job, meta and meta["out"]))
    completed = False
    try:
        errors = (
            open_writer(errors_path, "jsonl", _resume(job, meta and meta["errors"], errors_path))
            if errors_path
            else None
        )
        try:
            yield out, errors
            completed = True
        finally:
            if errors is not None:
                _close(errors, completed, job)
    finally:
        if job is not None and not completed and not out.count and not meta:
            # A new job that wrote nothing: nothing to resume, nothing left behind.
            out.close(keep=False)
            job.store.path.unlink(missing_ok=True)
        else:
            _close(out, completed, job)


def _resume(job: _Job | None, state: Any, path: str | None = None) -> Resume | None:
    if job is None or (path is not None and special(Path(path))):
        return None
    return Resume(state if isinstance(state, dict) else None)


def _close(writer: Writer, completed: bool, job: _Job | None) -> None:
    if job is not None and not completed:
        writer.suspend()  # as the checkpoint expects it: a resume carries on from there
    else:
        # An interrupted or failed run keeps what it wrote (valid up to its last record);
        # one that wrote nothing leaves an existing file as it was.
        writer.close(keep=completed or writer.count > 0)


@contextlib.contextmanager
def _bar(total: int | None, show: bool, initial: int = 0) -> Iterator[tqdm[Any]]:
    bar = tqdm(
        total=total,
        initial=initial,
        unit=" rec",
        unit_scale=True,
        dynamic_ncols=True,
        disable=not (show and sys.stderr.isatty()),
        file=sys.stderr,
        smoothing=0.1,
    )
    try:
        yield bar
    finally:
        bar.close()
