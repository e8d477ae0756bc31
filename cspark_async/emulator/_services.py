"""Service registry: what `create` resolves a service locator to, and the built-in services."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeAlias

from attrs import field, frozen

__all__ = [
    "Service",
    "ServiceFn",
    "ServiceRegistry",
    "default_services",
    "RowsFn",
    "echo",
    "echo_rows",
    "premium",
    "sample_dataset",
]

Record: TypeAlias = dict[str, Any]
ServiceFn: TypeAlias = Callable[[Record], Record | Awaitable[Record]]
# (header, rows) -> (output header, output rows): a whole JSON-array chunk at once.
RowsFn: TypeAlias = Callable[
    [list[str], list[list[Any]]], tuple[list[str], Sequence[Sequence[Any]]]
]

_NAMESPACE = uuid.UUID("6f1c4f0e-6f4e-4d59-9c38-8b0d2f6a8c11")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


_URI_RE = re.compile(
    r"^/?(?:folders/)?(?P<folder>[^/\[\]]+)/(?:services/)?(?P<service>[^/\[\]]+)"
    r"(?:\[(?P<version>[^\]]*)\])?$"
)


@frozen
class Service:
    """A service the emulator can run: `fn(record) -> outputs`, sync or async.

    `effective_since` (naive means UTC) is when its one version took effect: a create whose
    `version_by_timestamp` is earlier finds no version. None: effective since forever.

    `rows_fn` is an optional bulk form of `fn` for speed: `rows_fn(header, rows)` returns an
    output header and one output row per input row, the outputs `fn` gives record by record.
    The emulator calls it for a JSON-array chunk with no parameters, distinct column names, no
    summary and no output selection; if it raises, that chunk runs through `fn` instead, so
    each failing record still gets its own error. It must not change its arguments (the rows
    are the chunk's own, which that fallback reads). Each record's `process_time` is then an
    equal share of the chunk's.
    """

    name: str  # "folder/service"
    fn: ServiceFn = field(repr=False)
    rows_fn: RowsFn | None = field(default=None, repr=False, kw_only=True)
    version: str = "1.0.0"
    effective_since: datetime | None = field(default=None, converter=_utc)
    service_id: str = field(init=False)
    version_id: str = field(init=False)

    @service_id.default
    def _service_id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"service:{self.name}"))

    @version_id.default
    def _version_id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"version:{self.name}[{self.version}]"))

    @property
    def uri(self) -> str:
        return f"{self.name}[{self.version}]"


class ServiceRegistry:
    """Resolves the locators Spark documents: `f/s`, `f/s[1.2.3]`, `f/s[1.2]`,
    `/folders/f/services/s`, a service UUID or a version UUID."""

    def __init__(self, services: Mapping[str, ServiceFn | Service]) -> None:
        self._by_name: dict[str, Service] = {}
        for name, svc in services.items():
            if not isinstance(svc, Service):
                if not callable(svc):
                    raise TypeError(
                        f"service {name!r} must be a callable or a Service, got {svc!r}"
                    )
                svc = Service(name=name, fn=svc)
            match = _URI_RE.match(svc.name)
            if match is None or match["version"] is not None:
                raise ValueError(f"service name must look like 'folder/service', got {svc.name!r}")
            self._by_name[svc.name.lower()] = svc
        self._by_id = {s.service_id: s for s in self._by_name.values()}
        self._by_version_id = {s.version_id: s for s in self._by_name.values()}

    def __iter__(self) -> Any:
        return iter(self._by_name.values())

    def resolve(self, locator: str | None, version_id: str | None) -> Service | None:
        """The service a create body names, or None when it names none we know."""
        if version_id:
            return self._by_version_id.get(version_id.lower())
        if not locator:
            return None
        locator = locator.strip()
        if _UUID_RE.match(locator):
            return self._by_id.get(locator.lower()) or self._by_version_id.get(locator.lower())
        match = _URI_RE.match(locator)
        if match is None:
            return None
        svc = self._by_name.get(f"{match['folder']}/{match['service']}".lower())
        wanted = match["version"]
        if svc is None or not wanted:
            return svc
        # Spark resolves "[1]" and "[1.4]" to the latest matching release.
        if svc.version == wanted or svc.version.startswith(wanted + "."):
            return svc
        return None


def echo(record: Record) -> Record:
    """`my-folder/my-service`: returns its inputs, as the official documentation's examples show."""
    return dict(record)  # a copy: a caller that edits the outputs leaves the inputs alone


def echo_rows(header: list[str], rows: list[list[Any]]) -> tuple[list[str], list[list[Any]]]:
    """`echo` for a whole JSON-array chunk: the rows are the outputs."""
    return header, rows


_BASE_RATE = {"bronze": 0.0009, "silver": 0.0012, "gold": 0.0016}


def premium(record: Record) -> Record:
    """`demo/term-life`: annual premium of a term life policy.

    Inputs: age (18-75), smoker (bool or yes/no), cover (sum assured > 0), term (years, 5-40),
    plan (bronze|silver|gold). Raises ValueError on out-of-range inputs, which the emulator turns
    into that record's entry in `errors`.
    """
    age = _number(record, "age")
    cover = _number(record, "cover")
    term = _number(record, "term")
    plan = str(record.get("plan", "silver")).lower()
    smoker = str(record.get("smoker", "no")).strip().lower() in {"1", "true", "yes", "y"}
    if not 18 <= age <= 75:
        raise ValueError(f"age {age:g} is outside the insurable range 18-75")
    if cover <= 0:
        raise ValueError(f"cover must be positive, got {cover:g}")
    if not 5 <= term <= 40:
        raise ValueError(f"term {term:g} must be between 5 and 40 years")
    if plan not in _BASE_RATE:
        raise ValueError(f"unknown plan {plan!r} (bronze, silver or gold)")
    # Mortality loading grows ~7% per year of age past 30 and doubles for smokers.
    loading = 1.07 ** max(0.0, age + term / 2 - 30) * (2.0 if smoker else 1.0)
    annual = round(cover * _BASE_RATE[plan] * loading, 2)
    risk = "high" if loading > 6 else "medium" if loading > 2.5 else "low"
    return {"annual_premium": annual, "monthly_premium": round(annual / 12, 2), "risk_class": risk}


def _number(record: Record, name: str) -> float:
    value = record.get(name)
    if value is None or value == "":
        raise ValueError(f"missing input {name!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"input {name!r} must be a number, got {value!r}") from None


def default_services() -> dict[str, ServiceFn | Service]:
    """The services an emulator has when it is given none."""
    return {
        "demo/term-life": Service(name="demo/term-life", fn=premium, version="2.1.0"),
        "my-folder/my-service": Service(
            name="my-folder/my-service", fn=echo, rows_fn=echo_rows, version="0.4.2"
        ),
    }


def sample_dataset() -> Path:
    """The shipped sample for `demo/term-life`: 5,000 policies as CSV (10 of them invalid)."""
    return Path(__file__).parent / "data" / "policies.csv"
