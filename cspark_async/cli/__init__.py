"""The `cspark-async` command: argument parsing and output only; the work is done elsewhere.

Exit status: 0 done, 1 the run failed, 2 bad usage or input, 3 finished but records failed or
were skipped, or the batch did not end well (`run` only), 130 interrupted, 141 output pipe
closed.
"""

from __future__ import annotations

import contextlib
import logging
import os
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
from .._constants import (
    ENV_API_KEY,
    ENV_BEARER_TOKEN,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_OAUTH_PATH,
)
from .._exceptions import SparkError, SparkSdkError
from ..emulator import sample_dataset
from ._emulator import emulator
from ._formats import INPUT_FORMATS, OUTPUT_FORMATS, Format, InputError, format_of, require_extra
from ._interrupt import run_interruptibly
from ._resume import resume_command
from ._run import Connection, JobSummary, Source, run_job
from ._text import check_encoding
from ._values import ColumnTypes, parse_column_specs

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])

_EXIT_STATUSES = """\b
Exit status:
  0    every record computed, and the batch completed
  1    the run failed (connection, server, service not found...)
  2    bad usage or input (a bad row under --on-bad-row abort, a decode error,
       a missing credential or extra)
  3    finished, but records failed or were skipped, or the batch did not
       end completed/closed (e.g. failed: over --acceptable-errors)
  130  interrupted (Ctrl-C): the batch is cancelled
  141  the output pipe closed (e.g. | head): the batch is cancelled"""


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
        click.option(
            "-v",
            "--verbose",
            is_flag=True,
            help="Log every request (credentials redacted) and retry to stderr.",
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


def _log_requests(verbose: bool) -> None:
    if not verbose:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    logger = logging.getLogger("cspark_async")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return run_interruptibly(coro)
    except BrokenPipeError:
        _pipe_closed()
    except (InputError, SparkSdkError) as exc:  # nothing was wrong on the server's side
        _fail(str(exc), 2)
    except SparkError as exc:
        _fail(str(exc), 1)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"cspark-async: {message}", err=True)
    sys.exit(code)


def _pipe_closed() -> NoReturn:
    """The reader of our stdout went away (`| head`): stop quietly, as Unix tools do (their
    status after SIGPIPE is 128 + 13), and keep Python from complaining at exit."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)


def _check_connection(
    base_url: str | None, api_key: str | None, token: str | None, *, can_emulate: bool = False
) -> None:
    """Refuse, in the command's own terms, a run that could not connect (exit 2)."""
    if not base_url:
        raise click.UsageError(
            "no tenant: pass --base-url (or set CSPARK_BASE_URL)"
            + (", or --emulate" if can_emulate else "")
        )
    env = os.environ
    if (
        api_key
        or token
        or env.get(ENV_BEARER_TOKEN)
        or env.get(ENV_OAUTH_PATH)
        or (env.get(ENV_CLIENT_ID) and env.get(ENV_CLIENT_SECRET))
    ):
        return
    raise click.UsageError(
        f"no credential: pass --api-key or --token, or set {ENV_API_KEY}, {ENV_BEARER_TOKEN}, "
        f"{ENV_CLIENT_ID} + {ENV_CLIENT_SECRET} or {ENV_OAUTH_PATH} (in the environment or "
        "a .env file)"
    )


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


@cli.command(epilog=_EXIT_STATUSES)
@click.argument("service_uri")
@click.option(
    "-i",
    "--input",
    "input_path",
    required=True,
    help="CSV, JSON (array), JSON Lines, Parquet or Excel .xlsx file; '-' for stdin.",
)
@click.option(
    "-o",
    "--output",
    "output_path",
    required=True,
    help="Where results go: .jsonl, .csv, .json or .parquet; '-' for stdout.",
)
@click.option("--input-format", type=click.Choice(INPUT_FORMATS), help="Override the extension.")
@click.option("--output-format", type=click.Choice(OUTPUT_FORMATS), help="Override the extension.")
@click.option(
    "--encoding",
    metavar="NAME",
    help="Text encoding of a CSV/JSON input  [default: UTF-8, with or without a BOM]",
)
@click.option(
    "--errors",
    "errors_path",
    help="Also write failed records and skipped rows here (JSON Lines).",
)
@click.option(
    "--on-bad-row",
    type=click.Choice(["abort", "skip"]),
    default="abort",
    show_default=True,
    help="A row that is not a record (too few or many values, a cell not of its --column "
    "type): stop, or skip it (into --errors) and go on.",
)
@click.option(
    "--column",
    "column_specs",
    multiple=True,
    metavar="NAME=TYPE",
    help="Read column NAME as str, int, float, bool or json (repeatable).",
)
@click.option(
    "--no-infer",
    is_flag=True,
    help="Keep text cells as text. By default a cell becomes a number only when it is "
    "written exactly as that number is (so '00123', '1e6', '1.50' stay text), and an empty "
    "cell is null.",
)
@click.option(
    "--acceptable-errors",
    type=click.IntRange(0, 100),
    metavar="PCT",
    help="The batch ends failed when more than PCT % of its records fail  "
    "[default: none sent; the tenant decides]",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    help="Records a chunk  [default: about 200, evened over the pipeline's workers]",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    help="Chunks out at once  [default: adapts to the pipeline's workers]",
)
@click.option("--include-inputs", is_flag=True, help="Write each input beside its output.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run from OUTPUT.checkpoint: every record exactly once.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Start over: replace OUTPUT and drop its checkpoint, if any.",
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
    encoding: str | None,
    errors_path: str | None,
    on_bad_row: str,
    column_specs: tuple[str, ...],
    no_infer: bool,
    acceptable_errors: int | None,
    chunk_size: int | None,
    max_in_flight: int | None,
    include_inputs: bool,
    resume: bool,
    force: bool,
    emulate: bool,
    quiet: bool,
    base_url: str | None,
    api_key: str | None,
    token: str | None,
    env_file: str | None,
    verbose: bool,
) -> None:
    """Stream INPUT through SERVICE_URI (folder/service[version]) into OUTPUT.

    A run into a file keeps its progress in OUTPUT.checkpoint until it completes: after an
    interruption (Ctrl-C, a crash, a lost connection) the same command with --resume
    continues where it stopped, and OUTPUT holds every record exactly once."""
    if resume and force:
        raise click.UsageError("--resume continues a job, --force starts it over: choose one")
    if not emulate:
        _check_connection(base_url, api_key, token, can_emulate=True)
    try:
        column_types = parse_column_specs(column_specs)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--column'") from None
    try:
        in_fmt: Format | None = format_of(input_path, input_format, role="input")
        if input_path == "-" and input_format is None:
            in_fmt = None  # sniffed from the first line
        out_fmt = format_of(output_path, output_format, role="output")
        for fmt in (in_fmt, out_fmt):
            if fmt is not None:
                require_extra(fmt)
        check_encoding(encoding)
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
    _log_requests(verbose)
    summary = JobSummary()
    job = run_job(
        service=service_uri,
        source=Source(
            path=input_path,
            format=in_fmt,
            encoding=encoding,
            columns=ColumnTypes(column_types, infer=not no_infer),
            on_bad_row="skip" if on_bad_row == "skip" else "abort",
        ),
        output_path=output_path,
        output_format=out_fmt,
        errors_path=errors_path,
        connection=Connection(
            base_url=base_url, api_key=api_key, token=token, emulate=emulate, log_requests=verbose
        ),
        chunk_size=chunk_size,
        max_in_flight=max_in_flight,
        include_inputs=include_inputs,
        acceptable_errors=acceptable_errors,
        show_progress=not quiet,
        summary=summary,
        resume="resume" if resume else "force" if force else "new",
    )
    _finish(job, summary, output_path, quiet=quiet, strict=True)


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
        require_extra(out_fmt)
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
        source=Source(path=str(sample), format="csv"),
        output_path=output_path,
        output_format=out_fmt,
        connection=Connection(
            emulate=True, emulator_workers=8, emulator_latency_s=latency_ms / 1000.0
        ),
        chunk_size=100,
        include_inputs=True,
        acceptable_errors=1,  # the sample's 10 invalid policies are 0.2 %
        show_progress=not quiet,
        summary=summary,
    )
    _finish(job, summary, output_path, quiet=quiet, strict=False)
    if not quiet:
        _show_sample(output_path, out_fmt)


def _finish(
    job: Coroutine[Any, Any, JobSummary],
    summary: JobSummary,
    output_path: str,
    *,
    quiet: bool,
    strict: bool,
) -> None:
    """Run `job`, then say how it went: the error (if any), then the summary, then exit with
    the status `run --help` lists."""
    code = 0
    message = None
    try:
        run_interruptibly(job)
    except KeyboardInterrupt:
        if summary.resumable:
            click.echo(
                f"\ninterrupted: {summary.records} records written to {output_path}; "
                f"resume with:\n  {resume_command(sys.argv[1:])}",
                err=True,
            )
            sys.exit(130)
        batch = f"; batch {summary.batch_id} cancelled" if summary.batch_id else ""
        click.echo(
            f"\ninterrupted: {summary.records} records written to {output_path}{batch}", err=True
        )
        sys.exit(130)
    except BrokenPipeError:
        _pipe_closed()
    except (InputError, SparkSdkError) as exc:
        message, code = str(exc), 2
    except SparkError as exc:
        message, code = str(exc), 1
    if message is not None:
        click.echo(f"cspark-async: {message}", err=True)
    if not quiet and (message is None or summary.batch_id is not None):
        _summarise(summary, output_path, strict=strict)
    if code:
        sys.exit(code)
    if strict and not summary.ok:
        sys.exit(3)


def _summarise(summary: JobSummary, output_path: str, *, strict: bool) -> None:
    if summary.moved:
        skipped = f", {summary.skipped:,} bad rows skipped" if summary.skipped else ""
        click.echo(
            f"Done: the job had finished ({summary.records:,} records, {summary.failed:,} "
            f"failed{skipped}); its output is now in place -> {output_path}",
            err=True,
        )
        return
    if not summary.completed:
        head = "Stopped"
    elif summary.ok or (not strict and summary.batch_status in (None, "completed", "closed")):
        head = "Done"
    else:
        head = "Finished"
    parts = [
        f"{summary.records:,} records in {summary.seconds:.2f}s "
        f"({summary.records_per_s:,.0f} records/s)",
        f"{summary.failed:,} failed",
    ]
    if summary.skipped:
        parts.append(f"{summary.skipped:,} bad row{'s' if summary.skipped != 1 else ''} skipped")
    click.echo(f"{head}: {', '.join(parts)} -> {output_path}", err=True)
    if summary.batch_id is None:
        return
    status = summary.batch_status or "status unknown"
    why = ""
    if status == "failed" and summary.failed:
        why = (
            " (likely: more of its records failed than its acceptable error percentage allows; "
            "see --acceptable-errors)"
        )
    click.echo(f"Batch {summary.batch_id}: {status}{why}", err=True)


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


cli.add_command(emulator)


@cli.command()
@_connection_options
def describe(
    base_url: str | None,
    api_key: str | None,
    token: str | None,
    env_file: str | None,
    verbose: bool,
) -> None:
    """Batches in progress or finished in the last hour, and the tenant's buffers."""
    _check_connection(base_url, api_key, token)
    _log_requests(verbose)
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
    verbose: bool,
) -> None:
    """The status of one batch pipeline."""
    _check_connection(base_url, api_key, token)
    _log_requests(verbose)
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
    verbose: bool,
) -> None:
    """Cancel a batch pipeline: pending input and output are discarded."""
    _check_connection(base_url, api_key, token)
    _log_requests(verbose)
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
    try:
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        sys.stdout.flush()
    except BrokenPipeError:
        _pipe_closed()


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="cspark-async")
