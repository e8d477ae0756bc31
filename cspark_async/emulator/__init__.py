"""A faithful local emulator of the Coherent Spark Batch API (`api/v4/batch`).

Use it in-process (`async with Emulator() as emu`), from sync code (`ThreadedEmulator`), or
standalone (`python -m cspark_async.emulator`). It serves every documented endpoint with the
documented response shapes, runs real service functions on a bounded worker pool, measures
buffers in bytes of JSON, and injects seeded faults.

Where Spark documents nothing, or public sources disagree, the emulator follows these
assumptions (this is the one list of them; each is tested):

- A push that does not fit the input buffer is rejected whole: 429 `INPUT_BUFFER_FULL` with
  `Retry-After` (whole seconds) and `x-retry-after` (seconds, float). A push larger than the
  whole buffer can never fit: 413 `CHUNKS_TOO_LARGE`.
- Errors are JSON: `{"status", "error": {"code", "message"}, "request_id"}`; unknown ids 404,
  operations the batch's state forbids 409, malformed requests 400.
- `chunkresults` accepts `max` and `max_chunks` (default 100, at least 1, at most
  `max_pull_chunks`), always answers `{"data": [...], "status": {...}}`, and returns each
  finished chunk once, in completion order.
- Records are counted from `inputs` (rows after the header row, or objects); `size` is
  informational. Outputs mirror the input form; `warnings`, `errors` and `process_time` have one
  entry per record. A record whose service function raises gets outputs `null` and an error
  `{"error_type", "message"}`; the chunk does not fail. `process_time` is each record's
  compute time in milliseconds (to the microsecond); a chunk run by a service's bulk
  `rows_fn` gives each record an equal share of the chunk's.
- Create accepts the buffer sizes (MB, decimal) under all three published spellings:
  `max_input_size_in_mb` (cspark >= 0.3.0), `max_input_in_mb` (cspark 0.2.5-0.2.6) and
  `max_input_size` (older cspark and the TypeScript SDK), likewise for output; two spellings
  with different values in one body are a 400 `CONFLICTING_OPTIONS`. The client sends the
  `_size_in_mb` form, the one current releases send.
- `unique_record_key` (a comma-joined string or a list) is echoed in the batch's metadata and
  its input columns come first in each successful record's outputs, copied from the record's
  inputs (they win over a service output of the same name). A failed record's output stays
  null; its position in the chunk still identifies it.
- `output` (selected outputs: a comma-joined string or a list) keeps only the output names that
  one of its items matches in full as a regular expression (a pattern cannot contain a comma);
  an invalid pattern is a 400. The unique record key is always kept; aggregations read the
  service's full outputs.
- `version_by_timestamp` (ISO-8601; a date alone or no offset means UTC) must fall on or after
  the service's `effective_since`, else 404 `VERSION_NOT_FOUND`; an unparsable one is a 400. A
  pinned version (`version_id`, or `[x.y.z]` in the locator) makes it irrelevant.
  `subservice` is validated and ignored: emulated services have no subservices.
- `summary.return_all_records` (default true) false: the chunk result's `outputs`, `warnings`,
  `errors` and `process_time` are empty lists and only `summary_output` comes back; the
  records still count as completed.
- `summary.aggregation` supports SUM, AVG, MIN, MAX and COUNT; `summary_output` is one list with
  one `{"output_name", "operator", "value"}` per aggregation (`[[]]` with no summary). With
  `ignore_error` false a chunk with a failed record has null aggregates and counts as failed.
- Lifecycle: created -> in_progress on the first push; closing answers `closed`, then the batch
  becomes `completed` (or `failed` when the failed-record percentage exceeds
  `acceptable_error_percentage`) once every chunk is processed; results stay pullable. Cancel
  discards both buffers. After `idle_timeout` without requests a batch with pending work becomes
  `closed_by_timeout` (buffers discarded), one with all work done `completed_by_timeout`.
  A retried close or cancel is answered 200 with the current state; cancel after close is allowed.
- Spark documents only `pipeline_status` `idle` and `closed` (a finished batch). Emulator
  extensions, not Spark's: `processing` (a worker is busy) and `paused` (a result waits for
  output buffer space). dispose/cancel envelopes carry the batch under both `data` and `meta`.
- Auth is enforced only when credentials are configured; the OAuth2 token endpoint is served on
  the same host at `/auth/realms/{tenant}/protocol/openid-connect/token`. The URL's tenant must
  be the emulator's (404). `x-tenant-name` is tied to API keys, as the execute API documents:
  with `x-synthetic-key` it is required when auth is enforced (401) and must name the URL's
  tenant (403). With a bearer token or no credential it may be absent or differ: the URL wins
  (only older Spark APIs require it, the TypeScript SDK notes).
- `x-request-id` is echoed as a response header (and in error bodies) when the request has one.
- Compression, as Spark's API docs describe it: request bodies may be gzip or deflate
  (`Content-Encoding`; br only when the Brotli package is installed, else a plain-text 400).
  Answers of 1 KiB or more are gzip-compressed when `Accept-Encoding` allows it (deflate if
  only that is allowed); `Emulator(compress_responses=False)` turns this off. Buffers count
  the uncompressed JSON.
- describe's tenant block sums the buffers of the running pipelines: with none, 0 bytes are
  allocated, as the documented sample shows.
- Control plane (not part of Spark): `GET /_emulator/health`, `POST /_emulator/reset`,
  `PUT /_emulator/faults`.
"""

from ._faults import ENDPOINTS, Faults
from ._server import Emulator, ThreadedEmulator
from ._services import (
    RowsFn,
    Service,
    ServiceFn,
    default_services,
    echo,
    echo_rows,
    premium,
    sample_dataset,
)

__all__ = [
    "default_services",
    "echo",
    "echo_rows",
    "Emulator",
    "ENDPOINTS",
    "Faults",
    "premium",
    "RowsFn",
    "sample_dataset",
    "Service",
    "ServiceFn",
    "ThreadedEmulator",
]
