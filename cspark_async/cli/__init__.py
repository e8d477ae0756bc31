"""The `cspark-async` command: argument parsing and output only; the work is done elsewhere.

Exit status: 0 done, 1 the run failed, 2 bad usage or input, 3 finished but some records
failed (`run` only), 130 interrupted.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

try:
    import click
    from dotenv import load_dotenv
except ImportError as exc:  # pragma: no cover - the cli extra is missing
    raise SystemExit(
        f"cspark-async: the command line needs the 'cli' extra ({exc.name} is missing): "
        "pip install 'cspark-async[cli]'"
    ) from None

import orjson

from .._client import AsyncClient
from .._exceptions import SparkError
from ..emulator import sample_dataset
from ._io import InputError, format_of
from ._run import Connection, JobSummary, run_job

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])

_FORMATS = click.Choice(["csv", "json", "jsonl"])


def _connection_options(func: F) -> F:
    options = [
        click.option(
            "--base-url",
            envvar="CSPARK_BASE_URL",
            help="Tenant URL, e.g. "
            "https://excel.uat.us.coherent.global/my-tenant [env CSPARK_BASE_URL]",
        ),
        click.option("--api-key", envvar="CSPARK_API_KEY", help="[env CSPARK_API_KEY]"),
        click.option("--token", envvar="CSPARK_BEARER_TOKEN", help="[env CSPARK_BEARER_TOKEN]"),
        click.option(
            "--env-file",
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            help="Read CSPARK_* settings from this file (default: ./.env if present).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _load_env(env_file: str | None) -> None:
    # Real environment variables win over the file, as with every dotenv tool.
    path = Path(env_file) if env_file else Path(".env")
    if path.is_file():
        load_dotenv(path, override=False)


T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except InputError as exc:
        _fail(str(exc), 2)
    except SparkError as exc:
        _fail(str(exc), 1)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"cspark-async: {message}", err=True)
    sys.exit(code)


def _connect_or_fail(base_url: str | None, emulate: bool) -> None:
    if not base_url and not emulate:
        raise click.UsageError("no tenant: pass --base-url (or set CSPARK_BASE_URL), or --emulate")


class _Group(click.Group):
    """Loads `.env` / `--env-file` before any option reads the environment."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> click.Context:
        env_file = None
        for i, arg in enumerate(args):
            if arg == "--env-file" and i + 1 < len(args):
                env_file = args[i + 1]
            elif arg.startswith("--env-file="):
                env_file = arg.split("=", 1)[1]
        _load_env(env_file)  # a missing --env-file is reported by its option
        return super().make_context(info_name, args, parent, **extra)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cspark-async")
def cli() -> None:
    """Run Coherent Spark batch jobs from files, or try everything on a local emulator."""


@cli.command()
@click.argument("service_uri")
@click.option(
    "-i",
    "--input",
    "input_path",
    required=True,
    help="CSV, JSON (array), or JSON Lines file; '-' for stdin.",
)
@click.option(
    "-o",
    "--output",
    "output_path",
    required=True,
    help="Where results go: .jsonl, .csv or .json by extension; '-' for stdout.",
)
@click.option("--input-format", type=_FORMATS, help="Override the input's extension.")
@click.option("--output-format", type=_FORMATS, help="Override the output's extension.")
@click.option("--errors", "errors_path", help="Also write failed records here (JSON Lines).")
@click.option("--chunk-size", default=200, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    help="Chunks out at once [default: adapts to the pipeline's workers].",
)
@click.option("--include-inputs", is_flag=True, help="Write each input beside its output.")
@click.option(
    "--no-infer",
    is_flag=True,
    help="Send CSV cells as text (default: numbers become numbers, empty cells null).",
)
@click.option("--emulate", is_flag=True, help="Run on an in-process emulator, not a tenant.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@_connection_options
def run(
    service_uri: str,
    input_path: str,
    output_path: str,
    input_format: str | None,
    output_format: str | None,
    errors_path: str | None,
    chunk_size: int,
    max_in_flight: int | None,
    include_inputs: bool,
    no_infer: bool,
    emulate: bool,
    quiet: bool,
    base_url: str | None,
    api_key: str | None,
    token: str | None,
    env_file: str | None,
) -> None:
    """Stream INPUT through SERVICE_URI (folder/service[version]) into OUTPUT."""
    _connect_or_fail(base_url, emulate)
    try:
        in_fmt = format_of(input_path, input_format, role="input")
        if input_path == "-" and input_format is None:
            in_fmt = None  # type: ignore[assignment]  # sniffed from the first line
        out_fmt = format_of(output_path, output_format, role="output")
        if input_path != "-" and not Path(input_path).is_file():
            raise InputError(f"input {input_path}: no such file")
        for written in (output_path, errors_path):
            if (
                written not in (None, "-")
                and input_path != "-"
                and (Path(written).resolve() == Path(input_path).resolve())
            ):
                raise InputError(f"{written} is the input file: writing it would destroy it")
    except InputError as exc:
        _fail(str(exc), 2)
    summary = JobSummary()
    job = run_job(
        service=service_uri,
        input_path=input_path,
        input_format=in_fmt,
        output_path=output_path,
        output_format=out_fmt,
        errors_path=errors_path,
        connection=Connection(base_url=base_url, api_key=api_key, token=token, emulate=emulate),
        chunk_size=chunk_size,
        max_in_flight=max_in_flight,
        include_inputs=include_inputs,
        infer_types=not no_infer,
        show_progress=not quiet,
        summary=summary,
    )
    _finish(job, summary, output_path, quiet=quiet, fail_on_records=True)


@cli.command()
@click.option(
    "-o",
    "--output",
    "output_path",
    default="demo-outputs.jsonl",
    show_default=True,
    help="Where the results go (.jsonl, .csv or .json).",
)
@click.option(
    "--latency-ms",
    default=2.0,
    show_default=True,
    help="Simulated compute per record on the emulator.",
)
@click.option("-q", "--quiet", is_flag=True)
def demo(output_path: str, latency_ms: float, quiet: bool) -> None:
    """Price 5,000 term-life policies on the built-in emulator: the shipped sample dataset
    through the demo service, with a progress bar and a summary."""
    sample = sample_dataset()
    try:
        out_fmt = format_of(output_path, None, role="output")
    except InputError as exc:
        _fail(str(exc), 2)
    if not quiet:
        click.echo(
            f"Starting a local Spark emulator and streaming {sample.name} "
            "through demo/term-life ...",
            err=True,
        )
    summary = JobSummary()
    job = run_job(
        service="demo/term-life",
        input_path=str(sample),
        input_format="csv",
        output_path=output_path,
        output_format=out_fmt,
        connection=Connection(
            emulate=True, emulator_workers=8, emulator_latency_s=latency_ms / 1000.0
        ),
        chunk_size=100,
        include_inputs=True,
        show_progress=not quiet,
        summary=summary,
    )
    _finish(job, summary, output_path, quiet=quiet, fail_on_records=False)
    if not quiet:
        _show_sample(output_path, out_fmt)


def _finish(
    job: Coroutine[Any, Any, JobSummary],
    summary: JobSummary,
    output_path: str,
    *,
    quiet: bool,
    fail_on_records: bool,
) -> None:
    try:
        _run(job)
    except KeyboardInterrupt:
        batch = f"; batch {summary.batch_id} cancelled" if summary.batch_id else ""
        click.echo(
            f"\ninterrupted: {summary.records} records written to {output_path}{batch}", err=True
        )
        sys.exit(130)
    if not quiet:
        rate = f"{summary.records_per_s:,.0f} records/s"
        click.echo(
            f"Done: {summary.records:,} records in {summary.seconds:.2f}s ({rate}), "
            f"{summary.failed:,} failed -> {output_path}"
            + (f" (batch {summary.batch_id})" if summary.batch_id else ""),
            err=True,
        )
    if fail_on_records and summary.failed:
        sys.exit(3)


def _show_sample(output_path: str, fmt: str) -> None:
    if fmt != "jsonl":
        return
    shown: list[dict[str, Any]] = []
    failure = None
    with open(output_path, encoding="utf-8") as f:
        for line in f:  # the first two results and the first failure
            item = orjson.loads(line)
            if item["error"] is None and len(shown) < 2:
                shown.append(item)
            elif item["error"] is not None:
                failure = item
                break
    for item in [*shown, *([failure] if failure else [])]:
        outcome = item["output"] if item["error"] is None else f"error: {item['error']['message']}"
        click.echo(f"  record {item['offset']}: {item['input']} -> {outcome}", err=True)


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def emulator(ctx: click.Context) -> None:
    """Serve a standalone emulator until interrupted (--help for its options)."""
    from ..emulator.__main__ import main as serve

    sys.exit(serve(ctx.args, prog="cspark-async emulator"))


@cli.command()
@_connection_options
def describe(
    base_url: str | None, api_key: str | None, token: str | None, env_file: str | None
) -> None:
    """Batches in progress or finished in the last hour, and the tenant's buffers."""
    _connect_or_fail(base_url, False)
    _print_json(_call(base_url, api_key, token, lambda spark: spark.batches.describe()))


@cli.command()
@click.argument("batch_id")
@_connection_options
def status(
    batch_id: str,
    base_url: str | None,
    api_key: str | None,
    token: str | None,
    env_file: str | None,
) -> None:
    """The status of one batch pipeline."""
    _connect_or_fail(base_url, False)
    _print_json(
        _call(base_url, api_key, token, lambda spark: spark.batches.of(batch_id).get_status())
    )


@cli.command()
@click.argument("batch_id")
@_connection_options
def cancel(
    batch_id: str,
    base_url: str | None,
    api_key: str | None,
    token: str | None,
    env_file: str | None,
) -> None:
    """Cancel a batch pipeline: pending input and output are discarded."""
    _connect_or_fail(base_url, False)
    _print_json(_call(base_url, api_key, token, lambda spark: spark.batches.of(batch_id).cancel()))


def _call(
    base_url: str | None,
    api_key: str | None,
    token: str | None,
    verb: Callable[[AsyncClient], Coroutine[Any, Any, Any]],
) -> Any:
    async def main() -> Any:
        async with AsyncClient(base_url, api_key=api_key, token=token) as spark:
            return (await verb(spark)).data

    return _run(main())


def _print_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="cspark-async")
