"""`python -m cspark_async.emulator`: serve the emulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from ._faults import Faults
from ._serve import serve_forever
from ._server import Emulator


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Serve a local Coherent Spark Batch API emulator.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--tenant", default="emulator")
    p.add_argument("--workers", type=int, default=16, help="concurrent chunks per pipeline")
    p.add_argument("--latency-ms", type=float, default=0.0, help="simulated compute per record")
    p.add_argument("--input-buffer-mb", type=float, default=70.0)
    p.add_argument("--output-buffer-mb", type=float, default=80.0)
    p.add_argument("--idle-timeout", type=float, default=1800.0, help="seconds")
    p.add_argument("--api-key", help="enforce this API key (default: accept any credential)")
    p.add_argument("--token", help="enforce this bearer token")
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument("--fault-rate-limit", type=float, default=0.0, help="probability of a 429")
    p.add_argument("--fault-server-error", type=float, default=0.0, help="probability of a 5xx")
    p.add_argument(
        "--fault-reset",
        type=float,
        default=0.0,
        help="probability of a dropped connection (half before, half after applying)",
    )
    p.add_argument(
        "--fault-error-after",
        type=float,
        default=0.0,
        help="probability of a 502/504 answer to a request that was applied",
    )
    p.add_argument(
        "--no-compression",
        action="store_true",
        help="never compress answers (by default gzip when Accept-Encoding allows it)",
    )
    return p


async def _serve(args: argparse.Namespace) -> None:
    faults = Faults(
        seed=args.fault_seed,
        rate_limit=args.fault_rate_limit,
        server_error=args.fault_server_error,
        reset_before=args.fault_reset / 2,
        reset_after=args.fault_reset / 2,
        error_after=args.fault_error_after,
    )
    emulator = Emulator(
        tenant=args.tenant,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        token=args.token,
        workers=args.workers,
        record_latency=args.latency_ms / 1000.0,
        input_buffer_bytes=int(args.input_buffer_mb * 1_000_000),
        output_buffer_bytes=int(args.output_buffer_mb * 1_000_000),
        idle_timeout=args.idle_timeout,
        faults=faults,
        compress_responses=not args.no_compression,
    )
    await serve_forever(emulator, lambda url: print(url, flush=True))


def main(argv: Sequence[str] | None = None, prog: str = "python -m cspark_async.emulator") -> int:
    args = _parser(prog).parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except (OSError, ValueError) as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
