"""Typed JSON: the TypedDicts describe what the API (here, the emulator) really answers, and a
type checker holds user code to them (`batch.data["idd"]` and a misspelt `create=` option fail
under `mypy --strict`)."""

from __future__ import annotations

import inspect
import textwrap
import types
import typing
from pathlib import Path
from typing import Any

import anyio
import pytest
from typing_extensions import get_type_hints, is_typeddict

from cspark_async import (
    AsyncBatches,
    BatchDescriptionJSON,
    BatchJSON,
    BatchStatusJSON,
    CreateOptions,
    PullResultJSON,
)
from cspark_async.emulator import Emulator


def check(value: Any, tp: Any, path: str = "$") -> None:
    """`value` has the shape `tp` describes: keys, nesting and scalar types."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return
    if is_typeddict(tp):
        assert isinstance(value, dict), path
        keys = set(value)
        assert tp.__required_keys__ <= keys, (path, tp.__required_keys__ - keys)
        known = tp.__required_keys__ | tp.__optional_keys__
        assert keys <= known, (path, keys - known)
        hints = get_type_hints(tp)
        for key, item in value.items():
            check(item, hints[key], f"{path}.{key}")
    elif origin in (types.UnionType, typing.Union):
        errors = []
        for option in args:
            try:
                check(value, option, path)
                return
            except AssertionError as exc:
                errors.append(exc)
        raise AssertionError(path, value, errors)
    elif origin is list:
        assert isinstance(value, list), path
        for i, item in enumerate(value):
            check(item, args[0], f"{path}[{i}]")
    elif origin is dict:
        assert isinstance(value, dict), path
    elif tp is type(None):
        assert value is None, path
    elif tp is float:
        assert not isinstance(value, bool), path
        assert isinstance(value, (int, float)), path
    else:
        assert not isinstance(value, bool), path
        assert isinstance(value, tp), (path, value)


async def test_every_documented_shape_fits_what_the_emulator_answers() -> None:
    async with Emulator(workers=2) as emu, emu.client() as spark:
        created = await spark.batches.create("my-folder/my-service")
        check(created.data, BatchJSON)
        pipeline = spark.batches.of(created.data["id"])
        check((await pipeline.push(inputs=[{"value": 1}, {"value": 2}])).data, BatchStatusJSON)
        pulled = []
        with anyio.fail_after(10):
            while not pulled:
                result = await pipeline.pull()
                check(result.data, PullResultJSON)
                pulled = result.data["data"]
        assert pulled[0]["outputs"] == [{"value": 1}, {"value": 2}]
        check((await pipeline.get_status()).data, BatchStatusJSON)
        info = await pipeline.get_info()
        check(info.data, BatchJSON)
        assert set(info.data["data"]) >= {"summary", "configuration"}  # both are checked
        check((await pipeline.dispose()).data, BatchJSON)
        described = await spark.batches.describe()
        check(described.data, BatchDescriptionJSON)
        assert described.data["recent_batches"] or described.data["in_progress_batches"]
        other = spark.batches.of((await spark.batches.create("my-folder/my-service")).data["id"])
        check((await other.cancel()).data, BatchJSON)


def test_create_options_are_exactly_the_keywords_of_create() -> None:
    keywords = inspect.signature(AsyncBatches.create).parameters
    assert set(CreateOptions.__optional_keys__) == set(keywords) - {"self", "uri"}
    hints, annotations = get_type_hints(CreateOptions), get_type_hints(AsyncBatches.create)
    for name, tp in hints.items():
        assert tp == annotations[name], name


USER_CODE = """
from cspark_async import AsyncClient, CreateOptions


async def main(spark: AsyncClient) -> None:
    batch = await spark.batches.create("my-folder/my-service")
    batch_id: str = batch.data["id"]
    status = await spark.batches.of(batch_id).get_status()
    available: int = status.data["records_available"]
    result = await spark.batches.of(batch_id).pull()
    outputs: list[object] = [c["outputs"] for c in result.data["data"]]
    since: str = batch.data["data"]["created_timestamp"]
    print(available, outputs, since)
    ok: CreateOptions = {"max_runners": 5, "accuracy": 0.9}
    spark.batches.stream_outputs("f/s", [], create={"min_runners": 2})
    print(ok)


async def mistakes(spark: AsyncClient) -> None:
    batch = await spark.batches.create("my-folder/my-service")
    print(batch.data["idd"])  # error
    status = await spark.batches.of(batch.data["id"]).get_status()
    print(status.data["records_submitted"])  # error: the wire says record_submitted
    spark.batches.stream_outputs("f/s", [], create={"max_runner": 5})  # error
    spark.batches.stream_outputs("f/s", [], create={"max_runners": "5"})  # error
"""


@pytest.mark.slow  # mypy reads the package and its dependencies (a few seconds, cached after)
def test_mypy_strict_checks_user_code_against_the_shapes(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    source = tmp_path / "user_code.py"
    source.write_text(textwrap.dedent(USER_CODE).lstrip("\n"))
    cache = Path(__file__).resolve().parents[2] / ".mypy_cache"
    out, err, _ = api.run(["--strict", "--cache-dir", str(cache), str(source)])
    errors = sorted(
        (int(line.split(":")[1]), line)
        for line in out.splitlines()
        # By name: with a warm cache mypy may print the path the same file had before.
        if line.split(":")[0].endswith(source.name) and ": error:" in line
    )
    marked = [n for n, line in enumerate(source.read_text().splitlines(), 1) if "# error" in line]
    assert [n for n, _ in errors] == marked, out + err
    assert 'TypedDict "BatchJSON" has no key "idd"' in errors[0][1]
    assert 'has no key "records_submitted"' in errors[1][1]
    assert 'expected "CreateOptions | None"' in errors[2][1]
    assert 'expected "CreateOptions | None"' in errors[3][1]
