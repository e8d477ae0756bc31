"""The one cattrs converter, and every rule that turns wire JSON into models and back.

Responses are read leniently: unknown keys are ignored, missing keys default, timestamps that do
not parse become None. Request bodies are built here too, with orjson.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar, get_args, get_origin

import attrs
import orjson
from cattrs.preconf.orjson import make_converter

from ._chunks import BatchChunk, ChunkData, count_records
from ._exceptions import SparkSdkError
from ._models import Batch, BatchStatus
from ._records import RecordReader, by_index, encode_option, frame_chunk

__all__ = ["chunks_from_raw", "converter", "dumps", "encode_chunk", "loads", "structure"]

T = TypeVar("T")

converter = make_converter()


def _parse_datetime(value: Any, _type: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):  # fromisoformat accepts "Z" only from Python 3.11
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _passthrough(value: Any, _type: Any) -> Any:
    # Outputs can be large; the typed view shares the decoded lists instead of copying them.
    return value if isinstance(value, list) else []


def _require_mapping(value: Any, cls: type) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a JSON object for {cls.__name__}, got {type(value).__name__}")
    return value


def _attrs_hook(cls: type) -> Callable[[Any, Any], Any]:
    inner: Callable[[Any, Any], Any] = converter.gen_structure_attrs_fromdict(cls)

    def structure_object(value: Any, _type: Any) -> Any:
        return inner(_require_mapping(value, cls), cls)

    return structure_object


def _is_model_list(type_: Any) -> bool:
    return get_origin(type_) is list and type_ != list[Any]


def _structure_list(value: Any, type_: Any) -> list[Any]:
    if value is None:
        return []  # null reads as missing
    if not isinstance(value, list):
        raise TypeError(f"expected a JSON array, got {type(value).__name__}")
    (item_type,) = get_args(type_)
    return [converter.structure(item, item_type) for item in value]


def _structure_status(value: Any, _type: Any) -> BatchStatus:
    doc = _require_mapping(value, BatchStatus)
    if "records_submitted" not in doc and "record_submitted" in doc:
        doc = {**doc, "records_submitted": doc["record_submitted"]}
    return _status_default(doc, BatchStatus)


def _structure_batch(value: Any, _type: Any) -> Batch:
    doc = _require_mapping(value, Batch)
    if doc.get("data") is None and isinstance(doc.get("meta"), dict):
        doc = {**doc, "data": doc["meta"]}  # dispose/cancel as the official test servers send it
    return _batch_default(doc, Batch)


converter.register_structure_hook(datetime, _parse_datetime)
converter.register_structure_hook_func(lambda t: t == list[Any], _passthrough)
converter.register_structure_hook_func(
    lambda t: t == dict[str, Any], lambda v, _t: v if isinstance(v, dict) else {}
)
converter.register_structure_hook_func(_is_model_list, _structure_list)
converter.register_structure_hook_factory(attrs.has, _attrs_hook)
_status_default = converter.gen_structure_attrs_fromdict(BatchStatus)
_batch_default = converter.gen_structure_attrs_fromdict(Batch)
converter.register_structure_hook(BatchStatus, _structure_status)
converter.register_structure_hook(Batch, _structure_batch)


def structure(value: Any, cls: type[T]) -> T:
    """`value` (decoded JSON) as a `cls` instance. Raises cattrs errors on wrong types."""
    return converter.structure(value, cls)


def loads(body: bytes | str) -> Any:
    return orjson.loads(body)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def encode_chunk(chunk: BatchChunk, where: str = "the chunk") -> bytes:
    """A chunk as `POST batch/{id}/chunks` expects it, as JSON; `summary` is omitted when
    absent. Its records and options are checked as the stream checks them.

    Raises:
        SparkSdkError: a record or option the stream would refuse (a ragged row, mixed forms,
            NaN, a datetime...), prefixed with `where`.
    """
    data = chunk.data
    reader = RecordReader(source="chunk", label=by_index)
    try:
        records = [encoded for encoded in map(reader.read, data.inputs) if encoded is not None]
        parameters = encode_option(data.parameters, "parameters") or b"{}"
        summary = encode_option(data.summary, "summary")
    except SparkSdkError as exc:
        raise SparkSdkError(f"{where}: {exc}") from None
    inputs = records if reader.header_json is None else [reader.header_json, *records]
    return frame_chunk(chunk.id, chunk.size, inputs, parameters, summary)


def chunks_from_raw(raw: str | bytes) -> list[BatchChunk]:
    """Chunks from a raw push body: `{"chunks": [...]}` or a bare array of chunks.

    Raises:
        SparkSdkError: not JSON, or not shaped like chunks.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SparkSdkError(f"raw push data is not valid JSON: {exc}") from None
    items = doc.get("chunks") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise SparkSdkError("raw push data must be {'chunks': [...]} or a JSON array of chunks")
    return [_chunk_from_raw(item, f"chunks[{i}]") for i, item in enumerate(items)]


def _chunk_from_raw(item: Any, path: str) -> BatchChunk:
    if not isinstance(item, dict):
        raise SparkSdkError(f"{path} must be an object")
    data = item.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("inputs"), list):
        raise SparkSdkError(f"{path}.data.inputs must be an array")
    parameters = data.get("parameters")
    summary = data.get("summary")
    if parameters is not None and not isinstance(parameters, dict):
        raise SparkSdkError(f"{path}.data.parameters must be an object")
    if summary is not None and not isinstance(summary, dict):
        raise SparkSdkError(f"{path}.data.summary must be an object")
    chunk_id = item.get("id")
    size = item.get("size")
    inputs = data["inputs"]
    return BatchChunk(
        id=chunk_id if isinstance(chunk_id, str) else "",
        data=ChunkData(inputs=inputs, parameters=parameters, summary=summary),
        size=size
        if isinstance(size, int) and not isinstance(size, bool)
        else count_records(inputs),
    )
