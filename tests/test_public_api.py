"""The public surface: `cspark_async.__all__` lists exactly the public names (httpx style)."""

from __future__ import annotations

import types

import cspark_async


def test_all_exports_every_public_name_sorted() -> None:
    public = {
        name
        for name, value in vars(cspark_async).items()
        # Subpackages (e.g. `cspark_async.emulator`) appear here once imported; they are
        # reached as modules, not re-exported names.
        if (not name.startswith("_") or name == "__version__")
        and not isinstance(value, types.ModuleType)
    }
    assert cspark_async.__all__ == sorted(public, key=str.casefold)


def test_every_listed_name_exists() -> None:
    for name in cspark_async.__all__:
        assert getattr(cspark_async, name) is not None, name


def test_the_issue_contract_names_are_exported() -> None:
    required = {
        "AsyncClient",
        "AsyncBatches",
        "AsyncPipeline",
        "UriParams",
        "ChunkData",
        "BatchChunk",
        "create_chunks",
        "SparkError",
        "SparkSdkError",
        "SparkApiError",
        "ApiResponse",
        "BatchStatus",
        "BatchInfo",
        "Batch",
        "ChunkResult",
        "PullResult",
        "BatchDescription",
        "BadRequestError",
        "UnauthorizedError",
        "ForbiddenError",
        "NotFoundError",
        "ConflictError",
        "UnsupportedMediaTypeError",
        "UnprocessableEntityError",
        "RateLimitError",
        "InternalServerError",
        "ServiceUnavailableError",
        "GatewayTimeoutError",
        "__version__",
    }
    assert required <= set(cspark_async.__all__)


def test_private_modules_declare_all() -> None:
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(cspark_async.__path__):
        # `_version.py` holds one line that hatch reads; it needs no `__all__`.
        if info.name.startswith("_") and not info.ispkg and info.name != "_version":
            module = importlib.import_module(f"cspark_async.{info.name}")
            assert isinstance(getattr(module, "__all__", None), list), info.name
            for name in module.__all__:
                assert hasattr(module, name), f"{info.name}.{name}"


def test_version() -> None:
    from cspark_async._version import __version__

    assert cspark_async.__version__ == __version__
    assert __version__.count(".") == 2
