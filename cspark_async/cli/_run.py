"""The `run` and `demo` jobs: a file through `spark.batches.stream_outputs`, into files."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from attrs import define, frozen
from tqdm import tqdm

from .._client import AsyncClient
from .._streaming._state import StreamState
from ..emulator import Emulator
from ._io import Format, Writer, count_records, open_writer, read_records

__all__ = ["Connection", "JobSummary", "run_job"]


@frozen(kw_only=True)
class Connection:
    """Where to run: a tenant, or an in-process emulator (`emulate`)."""

    base_url: str | None = None
    api_key: str | None = None
    token: str | None = None
    emulate: bool = False
    emulator_workers: int = 8
    emulator_latency_s: float = 0.0

    def __repr__(self) -> str:  # credentials stay out of reprs
        return f"Connection(base_url={self.base_url!r}, emulate={self.emulate})"


@define
class JobSummary:
    records: int = 0
    failed: int = 0
    seconds: float = 0.0
    batch_id: str | None = None
    completed: bool = False

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@contextlib.asynccontextmanager
async def connect(connection: Connection) -> AsyncIterator[AsyncClient]:
    if connection.emulate:
        async with (
            Emulator(
                workers=connection.emulator_workers, record_latency=connection.emulator_latency_s
            ) as emu,
            AsyncClient(emu.base_url, api_key="emulator", logger=False) as spark,
        ):
            yield spark
        return
    async with AsyncClient(
        connection.base_url, api_key=connection.api_key, token=connection.token
    ) as spark:
        yield spark


async def run_job(
    *,
    service: str,
    input_path: str,
    input_format: Format,
    output_path: str,
    output_format: Format,
    connection: Connection,
    errors_path: str | None = None,
    chunk_size: int = 200,
    max_in_flight: int | None = None,
    include_inputs: bool = False,
    infer_types: bool = True,
    show_progress: bool = True,
    summary: JobSummary | None = None,
) -> JobSummary:
    """Stream one file through a service. `summary` is filled in as it runs, so a caller that
    is interrupted still knows how far it got."""
    summary = summary or JobSummary()
    total = count_records(input_path, input_format)
    records = read_records(input_path, input_format, infer_types=infer_types)
    started = time.monotonic()
    with (
        _writers(output_path, output_format, errors_path) as (out, errors),
        _bar(total, show_progress) as bar,
    ):

        def progress(state: StreamState) -> None:
            bar.set_postfix(failed=state.records_failed, refresh=False)

        async with connect(connection) as spark:
            stream = spark.batches.stream_outputs(
                service,
                records,
                chunk_size=chunk_size,
                max_in_flight=max_in_flight,
                progress=progress,
            )
            try:
                async with stream as results:
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
                        bar.update(result.records)
                summary.completed = True
            finally:
                summary.batch_id = stream.batch_id
                summary.seconds = time.monotonic() - started
    return summary


@contextlib.contextmanager
def _writers(
    output_path: str, output_format: Format, errors_path: str | None
) -> Iterator[tuple[Writer, Writer | None]]:
    out = open_writer(output_path, output_format)
    completed = False
    try:
        errors = open_writer(errors_path, "jsonl") if errors_path else None
        try:
            yield out, errors
            completed = True
        finally:
            if errors is not None:
                errors.close(keep=completed or errors.count > 0)
    finally:
        # An interrupted or failed run keeps what it wrote (valid up to its last record); one
        # that wrote nothing leaves an existing file as it was.
        out.close(keep=completed or out.count > 0)


@contextlib.contextmanager
def _bar(total: int | None, show: bool) -> Iterator[tqdm[Any]]:
    bar = tqdm(
        total=total,
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
