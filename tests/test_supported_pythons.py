"""One list of supported Pythons: the classifiers, requires-python, mypy's and ruff's targets and
the versions `.ci/run` tests all name the same ones."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def pyproject() -> dict[str, Any]:
    if sys.version_info < (3, 11):  # pragma: no cover
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def classified(pyproject: dict[str, Any]) -> list[str]:
    prefix = "Programming Language :: Python :: "
    minors = [c.removeprefix(prefix) for c in pyproject["project"]["classifiers"]]
    return [m for m in minors if re.fullmatch(r"3\.\d+", m)]


def test_ci_tests_exactly_the_classified_versions(pyproject: dict[str, Any]) -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    match = re.search(r"^SUPPORTED=\(([^)]*)\)", ci, re.MULTILINE)
    assert match, "SUPPORTED=(...) not found in .ci/run"
    assert match.group(1).split() == classified(pyproject)


def test_the_oldest_classified_version_is_the_floor_everywhere(pyproject: dict[str, Any]) -> None:
    minors = classified(pyproject)
    oldest = minors[0]
    assert minors == [f"3.{n}" for n in range(int(oldest[2:]), int(oldest[2:]) + len(minors))]
    assert pyproject["project"]["requires-python"] == f">={oldest}"
    assert pyproject["tool"]["mypy"]["python_version"] == oldest
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + oldest.replace(".", "")
