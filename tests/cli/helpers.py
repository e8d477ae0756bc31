"""Shared helpers of the command-line tests."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from cspark_async.cli import cli

FIXTURES = Path(__file__).parent / "fixtures"
ECHO = "my-folder/my-service"
PREMIUM = "demo/term-life"


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def jsonl(path: Path) -> list[Any]:
    return [orjson.loads(line) for line in path.read_text().splitlines()]


def csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows
