"""The pytest plugin, as a user meets it: a test file in a fresh directory with no conftest, run
by a fresh pytest process that finds the fixtures through the package's entry point."""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.slow  # each case is a pytest subprocess (about a second)

# What a user's project would have: pytest-asyncio 1.x asks for its loop scope to be set.
INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""

# A user's whole test file (auto mode): the fixture is all the set-up there is.
MINIMAL = """
async def test_prices_records(spark_client):
    batch = await spark_client.batches.create("my-folder/my-service")
    pipeline = spark_client.batches.of(batch.data["id"])
    results = [r async for r in pipeline.stream_outputs([{"value": i} for i in range(50)])]
    assert [o for r in results for o in r.outputs] == [{"value": i} for i in range(50)]
"""

# The same checks in every mode: a custom service from the marker, the client, the environment.
BODY = """
import asyncio

import pytest

from cspark_async import AsyncClient
from cspark_async.emulator import Emulator

def double(record):
    return {"twice": record["x"] * 2}

@pytest.mark.spark_emulator(services={"f/double": double}, api_key="sk-user", workers=2)
{mark}async def test_client_marker_and_env(spark_emulator, spark_client, spark_env):
    assert isinstance(spark_emulator, Emulator)
    assert spark_env == {"CSPARK_BASE_URL": spark_emulator.base_url, "CSPARK_API_KEY": "sk-user"}
    out = spark_client.batches.stream_outputs("f/double", [{"x": 1}, {"x": 2}])
    assert [o for r in [r async for r in out] for o in r.outputs] == [{"twice": 2}, {"twice": 4}]
    async with AsyncClient() as from_env:  # as an app's lifespan would build it
        assert (await from_env.batches.describe()).data["recent_batches"]
"""


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    # Without pytest-asyncio its option would be unknown (a warning, so an error here).
    pytester.makeini(INI if "no:asyncio" not in args else INI.replace("asyncio_default", "# "))
    pytester.makepyfile(test_user=textwrap.dedent(source))
    assert not list(pytester.path.glob("conftest.py"))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)


def test_a_minimal_user_file_passes_with_no_conftest(pytester: pytest.Pytester) -> None:
    result = run(pytester, MINIMAL, "-o", "asyncio_mode=auto")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("mark", "args"),
    [
        pytest.param("", ("-o", "asyncio_mode=auto"), id="pytest-asyncio-auto"),
        pytest.param(
            "@pytest.mark.asyncio\n", ("-o", "asyncio_mode=strict"), id="pytest-asyncio-strict"
        ),
        pytest.param("@pytest.mark.anyio\n", ("-o", "asyncio_mode=strict"), id="anyio"),
        pytest.param("@pytest.mark.anyio\n", ("-p", "no:asyncio"), id="anyio-alone"),
    ],
)
def test_every_async_runner_gets_the_emulator_in_the_tests_loop(
    pytester: pytest.Pytester, mark: str, args: tuple[str, ...]
) -> None:
    source = BODY.replace("{mark}", mark)
    if "anyio" in mark:
        source += '\n@pytest.fixture\ndef anyio_backend():\n    return "asyncio"\n'
    result = run(pytester, source, *args)
    result.assert_outcomes(passed=1)


def test_a_sync_test_gets_a_threaded_emulator_and_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A developer's own tenant settings must not leak into the test.
    monkeypatch.setenv("CSPARK_BEARER_TOKEN", "developer-token")
    monkeypatch.setenv("CSPARK_OAUTH_PATH", "/nowhere.json")
    source = """
    import asyncio
    import os

    import pytest

    from cspark_async import AsyncClient
    from cspark_async.emulator import ThreadedEmulator

    @pytest.mark.spark_emulator(token="tok-1")
    def test_sync(spark_emulator, spark_env):
        assert isinstance(spark_emulator, ThreadedEmulator)
        assert "CSPARK_OAUTH_PATH" not in os.environ
        assert os.environ["CSPARK_BEARER_TOKEN"] == "tok-1"

        async def main():  # a sync caller running its own loop, as a script does
            async with AsyncClient(max_retries=0) as spark:
                return (await spark.batches.describe()).status

        assert asyncio.run(main()) == 200

    def test_spark_client_needs_an_async_test(spark_client):
        pass
    """
    result = run(pytester, source, "-o", "asyncio_mode=auto")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*spark_client is an AsyncClient: use it from an async test*"])


def test_options_fixture_sets_a_scope_and_the_marker_wins(pytester: pytest.Pytester) -> None:
    source = """
    import pytest

    @pytest.fixture
    def spark_emulator_options():
        return {"workers": 3, "api_key": "sk-module"}

    async def test_module_options(spark_emulator, spark_env):
        assert spark_env["CSPARK_API_KEY"] == "sk-module"
        assert spark_emulator.engine.options.workers == 3

    @pytest.mark.spark_emulator(api_key="sk-marker")
    async def test_marker_wins(spark_emulator, spark_env):
        assert spark_env["CSPARK_API_KEY"] == "sk-marker"
        assert spark_emulator.engine.options.workers == 3
    """
    run(pytester, source, "-o", "asyncio_mode=auto").assert_outcomes(passed=2)


def test_everything_is_stopped_and_closed_after_the_test(pytester: pytest.Pytester) -> None:
    source = """
    import aiohttp
    import pytest

    seen = {}

    async def test_uses_them(spark_emulator, spark_client):
        await spark_client.batches.describe()
        seen["url"], seen["client"] = spark_emulator.base_url, spark_client

    async def test_they_are_gone():
        assert seen["client"].is_closed
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectionError):
                await session.get(seen["url"] + "/api/v4/batch/status")
    """
    run(pytester, source, "-o", "asyncio_mode=auto").assert_outcomes(passed=2)


def test_a_positional_marker_argument_is_a_usage_error(pytester: pytest.Pytester) -> None:
    source = """
    import pytest

    @pytest.mark.spark_emulator(4)
    async def test_bad(spark_emulator):
        pass
    """
    result = run(pytester, source, "-o", "asyncio_mode=auto")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*takes keyword arguments only*"])
