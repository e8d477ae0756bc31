"""`Emulator.env()`: the `CSPARK_*` variables that reach the emulator with the credential it
enforces, whichever kind that is."""

from __future__ import annotations

from typing import Any

import pytest

from cspark_async import AsyncClient, UnauthorizedError
from cspark_async.emulator import Emulator


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, {"CSPARK_API_KEY": "open"}),
        ({"api_key": "sk-1"}, {"CSPARK_API_KEY": "sk-1"}),
        ({"token": "tok-1"}, {"CSPARK_BEARER_TOKEN": "tok-1"}),
        (
            {"oauth_clients": {"cid": "secret"}},
            {"CSPARK_CLIENT_ID": "cid", "CSPARK_CLIENT_SECRET": "secret"},
        ),
    ],
    ids=["open", "api-key", "token", "oauth"],
)
async def test_env_reaches_the_emulator(
    options: dict[str, Any], expected: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Emulator(**options) as emu:
        env = emu.env()
        assert env == {"CSPARK_BASE_URL": emu.base_url, **expected}
        for name in ("API_KEY", "BEARER_TOKEN", "CLIENT_ID", "CLIENT_SECRET", "OAUTH_PATH"):
            monkeypatch.delenv(f"CSPARK_{name}", raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        async with AsyncClient(max_retries=0, logger=False) as spark:
            assert (await spark.batches.describe()).status == 200
        if options:  # the credential is what lets it in
            async with AsyncClient(emu.base_url, api_key="wrong", max_retries=0) as spark:
                with pytest.raises(UnauthorizedError):
                    await spark.batches.describe()
