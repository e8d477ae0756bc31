"""Credentials against an emulator that enforces them: API key, bearer token, OAuth2."""

from __future__ import annotations

import aiohttp
import pytest

import cspark_async as sdk
from cspark_async import AsyncClient
from cspark_async._auth import OAuth2Auth
from cspark_async.emulator import Emulator

from .conftest import RequestLog


async def test_api_key() -> None:
    async with Emulator(api_key="right-key") as emu:
        async with AsyncClient(emu.base_url, api_key="right-key") as spark:
            assert (await spark.batches.describe()).status == 200
        async with AsyncClient(emu.base_url, api_key="wrong-key") as spark:
            with pytest.raises(sdk.UnauthorizedError) as info:
                await spark.batches.describe()
    error = info.value
    assert error.status == 401
    assert error.error_code == "UNAUTHORIZED"
    assert error.attempts == 1
    assert "wrong-key" not in str(error)
    assert "wrong-key" not in repr(error)


async def test_bearer_token() -> None:
    async with Emulator(token="tkn-123456") as emu:
        async with AsyncClient(emu.base_url, token="Bearer tkn-123456") as spark:
            assert (await spark.batches.describe()).status == 200
        async with AsyncClient(emu.base_url, api_key="open") as spark:  # sends nothing
            with pytest.raises(sdk.UnauthorizedError, match="no credential"):
                await spark.batches.describe()


async def test_oauth_client_credentials_flow() -> None:
    log = RequestLog()
    async with Emulator(oauth_clients={"my-id": "my-secret"}) as emu:
        token_url = f"{emu.url}/auth/realms/emulator/protocol/openid-connect/token"
        async with aiohttp.ClientSession(trace_configs=[log.trace_config()]) as session:
            oauth = {"client_id": "my-id", "client_secret": "my-secret"}
            async with AsyncClient(emu.base_url, oauth=oauth, session=session) as spark:
                batch = await spark.batches.create("my-folder/my-service")
                pipeline = spark.batches.of(batch.data["id"])
                await pipeline.push(inputs=[{"value": 1}])
                await pipeline.get_status()
                auth = spark._http.auth
                assert isinstance(auth, OAuth2Auth)
                assert auth.fetches == 1

                # The server forgets our token: one 401, one new token, and the call succeeds.
                auth._token = "revoked-token"
                await pipeline.get_status()
                assert auth.fetches == 2
    methods = [(m, url) for m, url, _ in log.requests]
    assert methods[0] == ("POST", token_url)  # fetched before the first API call
    assert sum(url == token_url for _, url in methods) == 2
    for _, url, headers in log.requests:
        if url != token_url:
            assert headers["Authorization"].startswith("Bearer ")
            assert headers["Authorization"] != "Bearer None"


async def test_oauth_wrong_secret() -> None:
    async with Emulator(oauth_clients={"my-id": "my-secret"}) as emu:
        oauth = {"client_id": "my-id", "client_secret": "not-the-secret"}
        async with AsyncClient(emu.base_url, oauth=oauth) as spark:
            with pytest.raises(sdk.UnauthorizedError) as info:
                await spark.batches.describe()
    assert info.value.error_code == "INVALID_CLIENT"
    assert "not-the-secret" not in str(info.value)
