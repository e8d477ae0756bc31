"""Resumable runs of `cspark-async run`: where the checkpoint lives, what identifies the job,
and what must hold before a run may touch its output.

A run into a file keeps `OUT.checkpoint` beside it; the stream saves there the position its
output has reached, with the output's length (and the writers' state) as its `meta`. The file is
removed once the run completes, after a rewritten output moved into place (`_write.settle`);
meanwhile its `meta` says `settling`, so that a resume finishes that instead of cutting the
output back to a length it no longer has.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import orjson

from .._streaming._checkpoint import CheckpointError, FileCheckpoint
from ._formats import Format, InputError

__all__ = [
    "RESUMABLE_FORMATS",
    "ResumeMode",
    "checkpoint_path",
    "check_start",
    "check_resumed_job",
    "fingerprint",
    "resume_command",
]

ResumeMode = Literal["new", "resume", "force"]
RESUMABLE_FORMATS: Final = frozenset({"jsonl", "json", "csv"})


def checkpoint_path(output_path: str) -> Path:
    return Path(output_path).with_name(Path(output_path).name + ".checkpoint")


def check_start(mode: ResumeMode, output_path: str, fmt: Format) -> None:
    """Refuse a run that would overwrite a job's output, or resume what cannot be resumed.

    Raises:
        InputError: said with what to do instead.
    """
    checkpoint = checkpoint_path(output_path)
    if mode == "resume":
        if output_path == "-" or fmt not in RESUMABLE_FORMATS:
            what = "stdout" if output_path == "-" else f"a {fmt} output"
            raise InputError(f"--resume needs a .jsonl, .json or .csv output file, not {what}")
        if not checkpoint.exists():
            raise InputError(
                f"--resume: {output_path} has no checkpoint ({checkpoint.name}): nothing to "
                "resume; run without --resume to start the job"
            )
        return
    if mode == "force" or output_path == "-":
        return
    out = Path(output_path)
    if checkpoint.exists():
        raise InputError(
            f"{output_path} belongs to an interrupted job ({checkpoint.name}): add --resume to "
            "continue it, or --force to start over"
        )
    if out.is_file() and out.stat().st_size > 0:
        raise InputError(
            f"{output_path} already exists and is not empty: --force replaces it "
            "(or choose another output)"
        )


def fingerprint(input_path: str, options: Mapping[str, Any]) -> str:
    """The input's content and the options that read it and shape the output, hashed: a
    resume must see the same records and write them the same way."""
    digest = hashlib.sha256(orjson.dumps(options, option=orjson.OPT_SORT_KEYS))
    with open(input_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


async def check_resumed_job(
    store: FileCheckpoint, *, service: str, input_fingerprint: str, chunk_size: int | None
) -> Mapping[str, Any] | None:
    """The checkpoint's `meta`, once the job it names is this one: checked before the output
    is touched (the stream checks it all again when it opens).

    Raises:
        CheckpointError: missing, unreadable, corrupt, or another job's.
    """
    loaded = await store.load()
    if loaded is None:
        raise CheckpointError(f"checkpoint {store.path} is missing: nothing to resume")
    job = loaded.get("job")
    if not isinstance(job, Mapping):
        raise CheckpointError(f"checkpoint {store.path} is corrupt: it names no job")
    if job.get("input") != input_fingerprint:
        raise CheckpointError(
            f"the input (or an option that reads it or shapes the output) changed since the "
            f"run that wrote {store.path}: resume with the same file and options, or --force "
            "to start over"
        )
    if job.get("service") != service:
        raise CheckpointError(
            f"checkpoint {store.path} is for service {job.get('service')!r}, not {service!r}"
        )
    if job.get("chunk_size") != chunk_size:
        raise CheckpointError(
            f"checkpoint {store.path} was written with --chunk-size {job.get('chunk_size')}: "
            "resume with the same"
        )
    meta = loaded.get("meta")
    return meta if isinstance(meta, Mapping) else None


class ForgetBatch:
    """A checkpoint store whose batch is forgotten on load: the in-process emulator of an
    earlier run died with it, so a resume goes to a fresh batch."""

    def __init__(self, store: FileCheckpoint) -> None:
        self._store = store

    def __repr__(self) -> str:
        return repr(self._store)

    async def load(self) -> Mapping[str, Any] | None:
        loaded = await self._store.load()
        return None if loaded is None else {**loaded, "batch_id": None}

    async def save(self, checkpoint: Mapping[str, Any]) -> None:
        await self._store.save(checkpoint)

    async def clear(self) -> None:
        await self._store.clear()


def resume_command(argv: Sequence[str]) -> str:
    """The command that continues this run: the same arguments, with --resume."""
    args = [a for a in argv if a != "--force"]
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(["cspark-async", *args])
