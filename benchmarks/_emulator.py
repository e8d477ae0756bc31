"""The emulator as its own OS process, one per scenario, so it never shares the client's event
loop or core accounting. Stopped with SIGINT (its clean shutdown path)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from types import TracebackType
from typing import IO, Any

__all__ = ["EmulatorProcess"]

_START_TIMEOUT_S = 20.0


class EmulatorProcess:
    """`python -m cspark_async.emulator` with the given settings; `url` is its base URL."""

    def __init__(
        self,
        *,
        workers: int,
        latency_ms: float,
        input_buffer_mb: float = 70.0,
        output_buffer_mb: float = 80.0,
        compress_responses: bool = False,
    ) -> None:
        # Answers are not compressed by default here: on loopback gzip only adds CPU on both
        # sides, and these scenarios measure client overhead (benchmarks/compression.py
        # measures compression on a bandwidth-limited link).
        self.settings: dict[str, Any] = {
            "workers": workers,
            "latency_ms": latency_ms,
            "input_buffer_mb": input_buffer_mb,
            "output_buffer_mb": output_buffer_mb,
            "compress_responses": compress_responses,
        }
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""  # http://127.0.0.1:PORT/emulator
        self.root = ""  # http://127.0.0.1:PORT

    def start(self) -> None:
        s = self.settings
        cmd = [
            sys.executable, "-m", "cspark_async.emulator", "--port", "0",
            "--workers", str(s["workers"]),
            "--latency-ms", str(s["latency_ms"]),
            "--input-buffer-mb", str(s["input_buffer_mb"]),
            "--output-buffer-mb", str(s["output_buffer_mb"]),
            *([] if s["compress_responses"] else ["--no-compression"]),
        ]
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self._proc.stdout is not None
        line = _readline(self._proc.stdout, _START_TIMEOUT_S)
        if not line.startswith("http"):
            self.stop()
            raise RuntimeError(f"the emulator did not start (first line: {line!r})")
        self.url = line.strip()
        self.root = self.url.rsplit("/", 1)[0]
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(self.root + "/_emulator/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def reset(self) -> None:
        """Forget every batch, so each contender starts from an empty emulator."""
        req = urllib.request.Request(self.root + "/_emulator/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def cpu_seconds(self) -> float | None:
        """The emulator's user+system CPU so far (Linux /proc; None elsewhere)."""
        if self._proc is None:
            return None
        try:
            with open(f"/proc/{self._proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        # After the ")" that ends the command name, utime and stime are fields 12 and 13.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> EmulatorProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _readline(stream: IO[str], timeout_s: float) -> str:
    """One line from a child's stdout, or "" after `timeout_s` (a hung start must not hang us)."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        if not sel.select(timeout_s):
            return ""
    return stream.readline()
