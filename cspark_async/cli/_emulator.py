"""`cspark-async emulator`: serve a standalone emulator with the built-in services and any of
the user's own (`--service folder/name=module:function`), until interrupted."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Mapping

import click

from ..emulator import Emulator, Faults, Service, ServiceFn, default_services
from ..emulator._serve import serve_forever

__all__ = ["emulator", "load_services"]


def load_services(specs: tuple[str, ...]) -> dict[str, ServiceFn | Service]:
    """The built-in services plus `folder/name=module:function` ones (which win on a clash).
    The current directory is importable, as for `python -m`. Raises click.BadParameter."""
    services = default_services()
    here = os.getcwd()
    sys.path.insert(0, here)  # `mymodule:fn` from the directory the command runs in
    try:
        for spec in specs:
            name, fn = _load(spec)
            services[name] = fn
    finally:
        sys.path.remove(here)
    return services


def _load(spec: str) -> tuple[str, ServiceFn]:
    def bad(why: str) -> click.BadParameter:
        return click.BadParameter(f"{spec!r}: {why}", param_hint="'--service'")

    name, sep, target = spec.partition("=")
    module_name, colon, attr = target.partition(":")
    if not sep or not colon or not name or not module_name or not attr:
        raise bad("expected FOLDER/NAME=module:function")
    if name.count("/") != 1 or not all(name.split("/")):
        raise bad("the service name must look like folder/name")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an error inside the user's module, said in one line
        raise bad(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise bad(f"{module_name} has no function {attr!r}")
    return name, fn


def _describe(services: Mapping[str, ServiceFn | Service], specs: tuple[str, ...]) -> str:
    mine = {spec.partition("=")[0]: spec.partition("=")[2] for spec in specs}
    return ", ".join(
        f"{name} ({mine[name]})" if name in mine else name for name in sorted(services)
    )


@click.command(context_settings={"show_default": True})
@click.option("--host", default="127.0.0.1", help="Address to bind.")
@click.option("--port", default=0, type=click.IntRange(0, 65535), help="Port (0: a free one).")
@click.option("--tenant", default="emulator", help="The tenant segment of the base URL.")
@click.option(
    "--service",
    "service_specs",
    multiple=True,
    metavar="FOLDER/NAME=module:function",
    help="Serve your own function(record) -> outputs (repeatable; sync or async).",
)
@click.option("--workers", default=16, type=click.IntRange(min=1), help="Chunks at once per batch.")
@click.option(
    "--latency-ms", default=0.0, type=click.FloatRange(min=0), help="Simulated compute per record."
)
@click.option("--input-buffer-mb", default=70.0, type=click.FloatRange(min=0.001))
@click.option("--output-buffer-mb", default=80.0, type=click.FloatRange(min=0.001))
@click.option("--idle-timeout", default=1800.0, type=click.FloatRange(min=0.001), help="Seconds.")
@click.option("--api-key", help="Enforce this API key  [default: accept any credential]")
@click.option("--token", help="Enforce this bearer token.")
@click.option("--fault-seed", default=0)
@click.option(
    "--fault-rate-limit", default=0.0, type=click.FloatRange(0, 1), help="Probability of a 429."
)
@click.option(
    "--fault-server-error", default=0.0, type=click.FloatRange(0, 1), help="Probability of a 5xx."
)
@click.option(
    "--fault-reset",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Probability of a dropped connection (half before, half after applying).",
)
def emulator(
    host: str,
    port: int,
    tenant: str,
    service_specs: tuple[str, ...],
    workers: int,
    latency_ms: float,
    input_buffer_mb: float,
    output_buffer_mb: float,
    idle_timeout: float,
    api_key: str | None,
    token: str | None,
    fault_seed: int,
    fault_rate_limit: float,
    fault_server_error: float,
    fault_reset: float,
) -> None:
    """Serve a local Spark Batch API emulator until interrupted. Its base URL is printed on
    stdout (for scripts), then what it serves on stderr."""
    services = load_services(service_specs)
    try:
        emu = Emulator(
            tenant=tenant,
            host=host,
            port=port,
            api_key=api_key,
            token=token,
            services=services,
            workers=workers,
            record_latency=latency_ms / 1000.0,
            input_buffer_bytes=int(input_buffer_mb * 1_000_000),
            output_buffer_bytes=int(output_buffer_mb * 1_000_000),
            idle_timeout=idle_timeout,
            faults=Faults(
                seed=fault_seed,
                rate_limit=fault_rate_limit,
                server_error=fault_server_error,
                reset_before=fault_reset / 2,
                reset_after=fault_reset / 2,
            ),
        )
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    credentials = (
        "API key and bearer token enforced"
        if api_key and token
        else "API key enforced"
        if api_key
        else "bearer token enforced"
        if token
        else "not enforced (any credential is accepted)"
    )

    def banner(url: str) -> None:
        click.echo(url)
        sys.stdout.flush()
        lines = [
            f"Spark emulator serving {url} (Ctrl-C to stop)",
            f"  services:    {_describe(services, service_specs)}",
            f"  workers:     {workers} per batch; latency {latency_ms:g} ms per record",
            f"  credentials: {credentials}",
        ]
        click.echo("\n".join(lines), err=True)

    try:
        asyncio.run(serve_forever(emu, banner))
    except OSError as exc:  # e.g. the port is taken
        click.echo(f"cspark-async: emulator: {exc}", err=True)
        sys.exit(2)
