"""A faithful local emulator of the Coherent Spark Batch API (`api/v4/batch`).

Use it in-process (`async with Emulator() as emu`), from sync code (`ThreadedEmulator`), or
standalone (`python -m cspark_async.emulator`). It serves every documented endpoint with the
documented response shapes, runs real service functions on a bounded worker pool, measures
buffers in bytes of JSON, and injects seeded faults.

Where Spark documents nothing, the emulator follows these assumptions (wire-protocol.md §7):

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
  `{"error_type", "message"}`; the chunk does not fail.
- `summary.aggregation` supports SUM, AVG, MIN, MAX and COUNT; `summary_output` is one list with
  one `{"output_name", "operator", "value"}` per aggregation (`[[]]` with no summary). With
  `ignore_error` false a chunk with a failed record has null aggregates and counts as failed.
- Lifecycle: created -> in_progress on the first push; closing answers `closed`, then the batch
  becomes `completed` (or `failed` when the failed-record percentage exceeds
  `acceptable_error_percentage`) once every chunk is processed; results stay pullable. Cancel
  discards both buffers. After `idle_timeout` without requests a batch with pending work becomes
  `closed_by_timeout` (buffers discarded), one with all work done `completed_by_timeout`.
  A retried close or cancel is answered 200 with the current state; cancel after close is allowed.
- `pipeline_status` is `idle`, `processing` (invented), `paused` (invented: output buffer full)
  or `closed`. dispose/cancel envelopes carry the batch under both `data` and `meta`.
- Auth is enforced only when credentials are configured; the OAuth2 token endpoint is served on
  the same host at `/auth/realms/{tenant}/protocol/openid-connect/token`.
- Control plane (not part of Spark): `GET /_emulator/health`, `POST /_emulator/reset`,
  `PUT /_emulator/faults`.
"""

from ._faults import ENDPOINTS, Faults
from ._server import Emulator, ThreadedEmulator
from ._services import Service, ServiceFn, default_services, echo, premium, sample_dataset

__all__ = [
    "default_services",
    "echo",
    "Emulator",
    "ENDPOINTS",
    "Faults",
    "premium",
    "sample_dataset",
    "Service",
    "ServiceFn",
    "ThreadedEmulator",
]
