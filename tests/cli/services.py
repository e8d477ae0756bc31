"""A user's own service function, for `cspark-async emulator --service` (imported by name)."""

from __future__ import annotations

from typing import Any


def double(record: dict[str, Any]) -> dict[str, Any]:
    return {"doubled": record["x"] * 2}
