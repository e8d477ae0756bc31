"""The create body's per-pipeline options: buffer sizes under every published spelling, the
version a timestamp picks, and how each record's outputs are shaped (selected outputs, the
unique record key). Pure: no HTTP, no state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Final

from attrs import frozen

from ._errors import EmulatorError
from ._services import Record, Service

__all__ = [
    "BUFFER_FIELDS",
    "OutputShape",
    "buffer_mb",
    "check_version_timestamp",
    "output_shape",
    "subservices",
]

# Published clients spell the buffer sizes three ways: `max_input_size` (cspark <= 0.2.4 and the
# TypeScript SDK), `max_input_in_mb` (0.2.5 and 0.2.6) and `max_input_size_in_mb` (>= 0.3.0).
BUFFER_FIELDS: Final = {
    "input": ("max_input_size_in_mb", "max_input_in_mb", "max_input_size"),
    "output": ("max_output_size_in_mb", "max_output_in_mb", "max_output_size"),
}


def buffer_mb(body: Mapping[str, Any], which: str) -> float | None:
    """The buffer size in MB a create body asks for, whichever spelling it uses.

    Raises:
        EmulatorError: 400 for a value that is not a positive number, or for two spellings
            with different values in one body.
    """
    given: dict[str, float] = {}
    for key in BUFFER_FIELDS[which]:
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise EmulatorError.bad_request(f"{key!r} must be a positive number, got {value!r}")
        given[key] = float(value)
    if len(set(given.values())) > 1:
        shown = ", ".join(f"{k}={v:g}" for k, v in given.items())
        raise EmulatorError.bad_request(
            f"conflicting {which} buffer sizes: {shown}; send one", "CONFLICTING_OPTIONS"
        )
    return next(iter(given.values()), None)


def _names(body: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A comma-joined string or a list of strings, as a tuple of non-blank names."""
    value = body.get(key)
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise EmulatorError.bad_request(
            f"{key!r} must be a comma-separated string or a list of strings, got {value!r}"
        )
    return tuple(name.strip() for name in items if name.strip())


def subservices(body: Mapping[str, Any]) -> tuple[str, ...]:
    """`subservice`: validated and kept, not applied (emulated services have no subservices)."""
    return _names(body, "subservice")


def check_version_timestamp(body: Mapping[str, Any], service: Service, pinned: bool) -> None:
    """`version_by_timestamp` must name a moment some version of `service` is effective at.

    A pinned version (`version_id`, or `[x.y.z]` in the locator) makes it irrelevant, as the
    execute API documents.

    Raises:
        EmulatorError: 400 for a value that is not an ISO-8601 timestamp; 404
            `VERSION_NOT_FOUND` for a moment before the service's only version took effect.
    """
    value = body.get("version_by_timestamp")
    if value is None or pinned:
        return
    if not isinstance(value, str):
        raise EmulatorError.bad_request(
            f"'version_by_timestamp' must be an ISO-8601 string, got {value!r}"
        )
    try:
        # Python 3.10's fromisoformat() does not read a trailing "Z".
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise EmulatorError.bad_request(
            f"'version_by_timestamp' is not an ISO-8601 timestamp: {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    since = service.effective_since
    if since is not None and moment < since:
        raise EmulatorError.not_found(
            f"no version of {service.name} is effective at {value} (its only version "
            f"{service.version} is effective from {since.isoformat()})",
            "VERSION_NOT_FOUND",
        )


@frozen
class OutputShape:
    """What each record's outputs look like: only the `selected` names (full-match regular
    expressions), with the `keys` input columns first, copied from the record's inputs."""

    keys: tuple[str, ...] = ()
    selected: tuple[re.Pattern[str], ...] = ()

    @property
    def identity(self) -> bool:
        return not self.keys and not self.selected

    def apply(self, inputs: Record, outputs: Record) -> Record:
        shaped: Record = {key: inputs.get(key) for key in self.keys}
        for name, value in outputs.items():
            if name in shaped:
                continue  # the key column is the input's value, whatever the service says
            if not self.selected or any(p.fullmatch(name) for p in self.selected):
                shaped[name] = value
        return shaped


def output_shape(body: Mapping[str, Any]) -> OutputShape:
    """`unique_record_key` and `output` (selected outputs) from a create body.

    Raises:
        EmulatorError: 400 for a malformed list or an invalid regular expression.
    """
    patterns = []
    for name in _names(body, "output"):
        try:
            patterns.append(re.compile(name))
        except re.error as exc:
            raise EmulatorError.bad_request(
                f"'output' holds an invalid regular expression {name!r}: {exc}"
            ) from None
    return OutputShape(keys=_names(body, "unique_record_key"), selected=tuple(patterns))
