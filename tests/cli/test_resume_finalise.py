"""The end of a resumable `cspark-async run` survives a kill at any point: after `--resume`
(or, once the checkpoint is gone, as it stands) the output is byte-identical to an
uninterrupted run's, and nothing is left beside it.

A kill is simulated by raising `Killed` at the step after the crash point: nothing catches it,
so none of the finishing steps after it run."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from cspark_async._streaming._checkpoint import FileCheckpoint
from cspark_async.cli._write import CsvWriter

from .helpers import ECHO, PREMIUM, invoke

RUN = importlib.import_module("cspark_async.cli._run")  # `cli._run` names a function


class Killed(BaseException):
    """The process dies here."""


GOOD = {"age": 30, "smoker": "no", "cover": 1000, "term": 10, "plan": "gold"}
BAD = {**GOOD, "age": 90}  # outside the insurable range: the record fails
EXTRA_KEYS = [{"a": i, **({"b": {"c": i}} if i % 7 == 3 else {})} for i in range(60)]

# name: (service, input records, output file, extra options)
CASES: dict[str, tuple[str, list[dict[str, Any]], str, tuple[str, ...]]] = {
    "csv-extra-column": (ECHO, EXTRA_KEYS, "out.csv", ()),
    "csv-every-record-failed": (PREMIUM, [BAD] * 30, "out.csv", ()),
    "csv-success-after-failures": (PREMIUM, [BAD] * 25 + [GOOD] * 25, "out.csv", ()),
    "json-array": (ECHO, EXTRA_KEYS, "out.json", ()),
    "jsonl-with-errors": (PREMIUM, [GOOD, BAD] * 30, "out.jsonl", ("--errors", "errors.jsonl")),
}


class Job:
    """One case: its input, an uninterrupted run's exit code and files, and runs into `out`."""

    def __init__(self, tmp_path: Path, case: str) -> None:
        self.dir = tmp_path / "job"
        self.dir.mkdir()
        self.service, records, name, self.options = CASES[case]
        self.source = tmp_path / "in.jsonl"
        self.source.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        self.out = self.dir / name
        reference = tmp_path / "reference"
        reference.mkdir()
        self.reference = self.run(into=reference).exit_code, files(reference)
        assert self.reference[1], "the uninterrupted run wrote nothing"

    def run(self, *options: str, into: Path | None = None) -> Any:
        where = into or self.dir
        extra = [str(where / o) if o.endswith(".jsonl") else o for o in self.options]
        args = ["-i", str(self.source), "-o", str(where / self.out.name), *extra, *options]
        return invoke("run", self.service, *args, "--emulate", "--chunk-size", "10")

    def killed(
        self,
        monkeypatch: pytest.MonkeyPatch,
        where: Any,
        name: str,
        when: Callable[..., bool] = lambda *args: True,
    ) -> None:
        """Run, dying instead of calling `where.name` (the first time `when` is true of its
        arguments); the patch is gone afterwards."""
        call = getattr(where, name)

        def dies(*args: Any) -> Any:
            if when(*args):
                raise Killed
            return call(*args)

        with monkeypatch.context() as patch:
            patch.setattr(where, name, dies)
            with pytest.raises(Killed) as killed:
                self.run()
        # The traceback holds the run's frames: without it they are garbage now, and a file
        # the run left open is a ResourceWarning here (an error), not in a later test.
        killed.value.__traceback__ = None
        del killed
        gc.collect()

    def assert_finished(self, result: Any) -> None:
        """`result` ended like the uninterrupted run, leaving exactly its files."""
        code, reference = self.reference
        assert result.exit_code == code, result.stderr
        assert files(self.dir) == reference


def files(where: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(where.iterdir())}


def checkpoint(job: Job) -> Any:
    return orjson.loads(job.out.with_name(job.out.name + ".checkpoint").read_bytes())


@pytest.fixture(params=list(CASES))
def job(request: pytest.FixtureRequest, tmp_path: Path) -> Job:
    return Job(tmp_path, request.param)


def test_killed_before_the_checkpoint_is_cleared(job: Job, monkeypatch: pytest.MonkeyPatch) -> None:
    job.killed(monkeypatch, FileCheckpoint, "clear")
    assert checkpoint(job)["complete"] is True
    job.assert_finished(job.run("--resume"))


def test_killed_just_after_held_rows_are_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = Job(tmp_path, "csv-success-after-failures")
    # Dies writing the first success: the held rows (failures) are written before it.
    job.killed(monkeypatch, CsvWriter, "_write", when=lambda w, row, x: "error_type" not in row)
    # The checkpoint (its saves trail the output) still says the rows are held.
    layout = checkpoint(job)["meta"]["out"]["layout"]
    assert layout["columns"] is None
    assert layout["held"] > 0
    job.assert_finished(job.run("--resume"))


def test_killed_while_the_final_form_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = Job(tmp_path, "csv-extra-column")
    job.killed(monkeypatch, Path, "replace")  # written and synced, not renamed yet
    assert (job.dir / "out.csv.final.tmp").exists()
    assert not (job.dir / "out.csv.final").exists()
    job.assert_finished(job.run("--resume"))


@pytest.mark.parametrize("then", ["--resume", "--force"])
def test_killed_while_the_output_settles(
    job: Job, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    job.killed(monkeypatch, RUN, "settle")
    assert checkpoint(job)["meta"]["settling"] is True  # the job stays one to resume
    left = files(job.dir)
    refused = job.run()
    assert refused.exit_code == 2
    assert "add --resume to continue it, or --force to start over" in refused.stderr
    assert files(job.dir) == left
    finished = job.run(then)
    job.assert_finished(finished)  # the exit status too: failed records count as they did
    if then == "--resume":
        assert "Done: the job had finished (" in finished.stderr


def test_starting_over_from_stdin_leaves_nothing_of_the_settling_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = Job(tmp_path, "csv-extra-column")
    job.killed(monkeypatch, RUN, "settle")
    fresh = b"".join(orjson.dumps({"a": i}) + b"\n" for i in range(3)).decode()
    args = ["-i", "-", "-o", str(job.out), "--input-format", "jsonl", "--emulate", "--force"]
    forced = invoke("run", ECHO, *args, input=fresh)
    assert forced.exit_code == 0, forced.stderr
    assert sorted(files(job.dir)) == ["out.csv"]  # no checkpoint, final form or held rows
    written = job.out.read_bytes()
    refused = job.run("--resume")  # nothing left to resume: the fresh output stays
    assert refused.exit_code == 2
    assert job.out.read_bytes() == written


def test_a_symlinked_csv_output_stays_a_symlink_when_it_gains_an_extra_column(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in EXTRA_KEYS))
    real, link = tmp_path / "real.csv", tmp_path / "link.csv"
    link.symlink_to(real)
    result = invoke("run", ECHO, "-i", str(source), "-o", str(link), "--emulate")
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink()
    assert real.read_bytes().startswith(b"offset,output.a,error_type,error_message,extra\r\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "link.csv", "real.csv"]


def test_a_close_that_fails_closes_its_file_and_keeps_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    import io

    writer = CsvWriter(str(tmp_path / "out.csv"))
    writer.write({"offset": 0, "output": {"a": 1}, "error": None})

    def broken() -> Any:
        raise ValueError("disk trouble")

    monkeypatch.setattr(writer._layout, "finish", broken)
    # A host whose stdout has no buffer (a StringIO) must not turn the error into another.
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(ValueError, match="disk"):
        writer.close()
    assert writer._file.stream.closed
