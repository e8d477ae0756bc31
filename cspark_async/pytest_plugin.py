"""pytest fixtures for testing your own code against the local Spark emulator.

Installed with the package (a `pytest11` entry point): no conftest and no import needed.

```python
async def test_prices_a_policy(spark_client):
    batch = await spark_client.batches.create("demo/term-life")
    ...

@pytest.mark.spark_emulator(services={"f/s": my_fn}, api_key="sk-test")
async def test_my_app(spark_env):          # CSPARK_* now point at the emulator
    async with AsyncClient() as spark: ...
```

Fixtures:
    spark_emulator: a running emulator, stopped after the test. An async test gets an
        `Emulator` in its own event loop; a synchronous test gets a `ThreadedEmulator`.
    spark_client: an `AsyncClient` bound to it (with the credential it enforces), closed after
        the test. Async tests only.
    spark_env: sets `CSPARK_BASE_URL` and the emulator's credential (and removes every other
        `CSPARK_*` credential), so code that builds `AsyncClient()` from the environment talks
        to the emulator. Undone after the test.
    spark_emulator_options: the keyword arguments given to `Emulator`; `{}` by default.
        Override it (in a conftest, module or class) to configure every test below it.

Marker: `@pytest.mark.spark_emulator(**options)` takes any `Emulator` keyword (`services`,
`workers`, `record_latency`, `api_key`, `faults`...); it wins over `spark_emulator_options`.

Async tests run under pytest-asyncio (auto or strict mode) or anyio's pytest plugin: the
emulator and the client live in the test's own event loop whichever runs it.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import pytest

if TYPE_CHECKING:  # the plugin loads with pytest in every project: import the SDK lazily
    from . import AsyncClient
    from .emulator import Emulator, ThreadedEmulator

__all__ = [
    "pytest_configure",
    "spark_client",
    "spark_emulator",
    "spark_emulator_options",
    "spark_env",
]

MARKER = "spark_emulator"

# Every variable `AsyncClient()` reads, so a developer's own tenant settings never leak in.
_ENV_NAMES = (
    "CSPARK_BASE_URL",
    "CSPARK_API_KEY",
    "CSPARK_BEARER_TOKEN",
    "CSPARK_CLIENT_ID",
    "CSPARK_CLIENT_SECRET",
    "CSPARK_OAUTH_PATH",
)

Runner = Literal["sync", "asyncio", "anyio"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): the Emulator options of this test's spark_emulator fixture "
        "(services=, workers=, record_latency=, api_key=, faults=, ...)",
    )


@pytest.fixture
def spark_emulator_options() -> dict[str, Any]:
    """`Emulator` keyword arguments for `spark_emulator`; override to configure a scope."""
    return {}


@pytest.fixture
def spark_emulator(
    request: pytest.FixtureRequest, spark_emulator_options: dict[str, Any]
) -> Emulator | ThreadedEmulator:
    """A running emulator: `Emulator` for an async test, `ThreadedEmulator` for a sync one."""
    runner = _runner(request)
    if runner == "sync":
        return request.getfixturevalue("_spark_threaded_emulator")  # type: ignore[no-any-return]
    return request.getfixturevalue(f"_spark_emulator_{runner}")  # type: ignore[no-any-return]


@pytest.fixture
def spark_client(request: pytest.FixtureRequest, spark_emulator: object) -> AsyncClient:
    """An `AsyncClient` on `spark_emulator`, closed after the test (async tests only)."""
    runner = _runner(request)
    if runner == "sync":
        raise pytest.UsageError(
            "spark_client is an AsyncClient: use it from an async test (or use spark_env and "
            "build a client inside your own event loop)"
        )
    return request.getfixturevalue(f"_spark_client_{runner}")  # type: ignore[no-any-return]


@pytest.fixture
def spark_env(
    spark_emulator: Emulator | ThreadedEmulator, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point the `CSPARK_*` variables at `spark_emulator`; returns what it set."""
    for name in _ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    env = spark_emulator.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


# ---- the runner-specific halves ------------------------------------------------------------
#
# Each runner claims async fixtures its own way: pytest-asyncio (strict mode) only those its
# decorator marks, anyio's plugin any async fixture a test on its `anyio_backend` requests. The
# public fixtures are synchronous, so neither claims them, and they ask for the half that the
# test's own runner will set up in the test's own event loop.


def _runner(request: pytest.FixtureRequest) -> Runner:
    function = getattr(request.node, "function", None)
    if function is None or not inspect.iscoroutinefunction(function):
        return "sync"
    if "anyio_backend" in request.fixturenames:
        return "anyio"
    return "asyncio"


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options = dict(request.getfixturevalue("spark_emulator_options"))
    for marker in reversed(list(request.node.iter_markers(MARKER))):  # closest last, so it wins
        if marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER} takes keyword arguments only (Emulator options)"
            )
        options.update(marker.kwargs)
    return options


@pytest.fixture
def _spark_threaded_emulator(request: pytest.FixtureRequest) -> Iterator[ThreadedEmulator]:
    from .emulator import ThreadedEmulator

    with ThreadedEmulator(**_options(request)) as emulator:
        yield emulator


async def _emulator(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    from .emulator import Emulator

    async with Emulator(**_options(request)) as emulator:
        yield emulator


async def _client(emulator: Emulator) -> AsyncIterator[AsyncClient]:
    async with emulator.client() as client:
        yield client


# anyio's plugin runs these (plain async fixtures) when the test is on `anyio_backend`.
@pytest.fixture
async def _spark_emulator_anyio(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    async for emulator in _emulator(request):
        yield emulator


@pytest.fixture
async def _spark_client_anyio(spark_emulator: Emulator) -> AsyncIterator[AsyncClient]:
    async for client in _client(spark_emulator):
        yield client


def _asyncio_fixture(function: Callable[..., Any]) -> Any:
    """pytest-asyncio's fixture decorator (its strict mode runs only the fixtures it marks);
    without pytest-asyncio, a fixture that says what to install."""
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - exercised only where pytest-asyncio is absent

        def needs_a_runner() -> None:
            raise pytest.UsageError(
                "an async test needs an async runner: install pytest-asyncio, or mark the "
                "test @pytest.mark.anyio"
            )

        return pytest.fixture(name=function.__name__)(needs_a_runner)
    return pytest_asyncio.fixture(function)


@_asyncio_fixture
async def _spark_emulator_asyncio(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    async for emulator in _emulator(request):
        yield emulator


@_asyncio_fixture
async def _spark_client_asyncio(spark_emulator: Emulator) -> AsyncIterator[AsyncClient]:
    async for client in _client(spark_emulator):
        yield client
