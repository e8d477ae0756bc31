"""cspark-async: an asyncio-native SDK for the Coherent Spark Batch API.

```python
from cspark_async import AsyncClient

async with AsyncClient(base_url=..., api_key=...) as spark:
    batch = await spark.batches.create("my-folder/my-service")
    pipeline = spark.batches.of(batch.data["id"])
    await pipeline.push(inputs=[{"value": 42}, {"value": 43}])
    result = await pipeline.pull()
    await pipeline.dispose()
```
"""

from ._batches import AsyncBatches
from ._chunks import BatchChunk, ChunkData, create_chunks
from ._client import AsyncClient
from ._config import BaseUrl, ClientOptions, OAuthCredentials
from ._exceptions import (
    BadGatewayError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    GatewayTimeoutError,
    InternalServerError,
    InvalidResponseError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    RequestTimeoutError,
    ServiceUnavailableError,
    SparkApiError,
    SparkConnectionError,
    SparkError,
    SparkSdkError,
    SparkTimeoutError,
    StreamError,
    UnauthorizedError,
    UnknownApiError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)
from ._json import (
    BatchConfigurationJSON,
    BatchDescriptionJSON,
    BatchInfoJSON,
    BatchJSON,
    BatchStatusJSON,
    BatchSummaryJSON,
    ChunkResultJSON,
    PullResultJSON,
    TenantConfigurationJSON,
    TenantJSON,
    TenantStatusJSON,
)
from ._ledger import DuplicatePolicy
from ._models import (
    Batch,
    BatchConfiguration,
    BatchDescription,
    BatchInfo,
    BatchStatus,
    BatchStatusValue,
    BatchSummary,
    ChunkResult,
    PipelineState,
    PipelineStats,
    PullResult,
    TenantConfiguration,
    TenantInfo,
    TenantStatus,
)
from ._pipeline import AsyncPipeline
from ._policy import RetryPolicy
from ._response import ApiResponse
from ._streaming._checkpoint import (
    CheckpointError,
    CheckpointStore,
    FileCheckpoint,
    SeekableRecords,
)
from ._streaming._results import StreamResult
from ._streaming._state import StreamState
from ._streaming._stream import ResultStream
from ._types import CreateOptions, OAuthInput, OnExit, Progress, Records, StrList
from ._uri import UriParams
from ._version import __version__

__all__ = [
    "__version__",
    "ApiResponse",
    "AsyncBatches",
    "AsyncClient",
    "AsyncPipeline",
    "BadGatewayError",
    "BadRequestError",
    "BaseUrl",
    "Batch",
    "BatchChunk",
    "BatchConfiguration",
    "BatchConfigurationJSON",
    "BatchDescription",
    "BatchDescriptionJSON",
    "BatchInfo",
    "BatchInfoJSON",
    "BatchJSON",
    "BatchStatus",
    "BatchStatusJSON",
    "BatchStatusValue",
    "BatchSummary",
    "BatchSummaryJSON",
    "CheckpointError",
    "CheckpointStore",
    "ChunkData",
    "ChunkResult",
    "ChunkResultJSON",
    "ClientOptions",
    "ConflictError",
    "create_chunks",
    "CreateOptions",
    "DuplicatePolicy",
    "FileCheckpoint",
    "ForbiddenError",
    "GatewayTimeoutError",
    "InternalServerError",
    "InvalidResponseError",
    "NotFoundError",
    "OAuthCredentials",
    "OAuthInput",
    "OnExit",
    "PayloadTooLargeError",
    "PipelineState",
    "PipelineStats",
    "Progress",
    "PullResult",
    "PullResultJSON",
    "RateLimitError",
    "Records",
    "RequestTimeoutError",
    "ResultStream",
    "RetryPolicy",
    "SeekableRecords",
    "ServiceUnavailableError",
    "SparkApiError",
    "SparkConnectionError",
    "SparkError",
    "SparkSdkError",
    "SparkTimeoutError",
    "StreamError",
    "StreamResult",
    "StreamState",
    "StrList",
    "TenantConfiguration",
    "TenantConfigurationJSON",
    "TenantInfo",
    "TenantJSON",
    "TenantStatus",
    "TenantStatusJSON",
    "UnauthorizedError",
    "UnknownApiError",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "UriParams",
]
