"""A TCP proxy that behaves like a network link: each direction carries at most `rate` bytes/s
(shared by every connection, as on one link) and every byte arrives `latency` seconds after it
was sent. `python benchmarks/_throttle.py --target 127.0.0.1:8080 --mbit 10 --latency-ms 5`
prints its own address, then serves until interrupted.

A byte is forwarded once the link would have finished transmitting it (the direction's bucket
is a running "busy until" time) plus the propagation delay, so transfers queue behind each other
like on a real link, and many connections share the bandwidth instead of each getting it whole.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time

_CHUNK = 64 * 1024
_QUEUE = 64  # chunks in transit per connection and direction (bounded: back-pressure)


class Link:
    """One direction of the link: serialises transmission at `rate` bytes/s."""

    def __init__(self, rate: float, latency: float) -> None:
        self.rate = rate
        self.latency = latency
        self.busy_until = 0.0
        self.bytes = 0

    def schedule(self, size: int) -> float:
        """When a chunk of `size` bytes handed over now arrives at the far end."""
        now = time.monotonic()
        start = max(now, self.busy_until)
        self.busy_until = start + size / self.rate
        self.bytes += size
        return self.busy_until + self.latency


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(_QUEUE)

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    delivering = asyncio.ensure_future(deliver())
    try:
        while data := await reader.read(_CHUNK):
            await queue.put((link.schedule(len(data)), data))
        await queue.put((0.0, b""))
        await delivering
    except (ConnectionError, OSError):
        pass
    finally:
        delivering.cancel()
        with contextlib.suppress(BaseException):
            await delivering


async def serve(target: tuple[str, int], rate: float, latency: float) -> None:
    up, down = Link(rate, latency), Link(rate, latency)  # client->server, server->client

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*target)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(_pipe(client_r, server_w, up), _pipe(server_r, client_w, down))
        finally:
            for w in (client_w, server_w):
                w.close()
                with contextlib.suppress(OSError):
                    await w.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    print(f"up {up.bytes} down {down.bytes}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", required=True, help="host:port to forward to")
    p.add_argument("--mbit", type=float, required=True, help="bandwidth per direction, Mbit/s")
    p.add_argument("--latency-ms", type=float, default=5.0, help="one-way delay")
    args = p.parse_args()
    host, _, port = args.target.rpartition(":")
    asyncio.run(serve((host, int(port)), args.mbit * 1_000_000 / 8, args.latency_ms / 1000))


if __name__ == "__main__":
    main()
