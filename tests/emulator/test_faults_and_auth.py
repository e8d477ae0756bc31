"""Fault injection (seeded, reproducible) and credential enforcement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from cspark_async.emulator import Emulator, Faults

from .conftest import Api, chunk, values


async def outcomes(api: Api, count: int, path: str = "/status") -> list[str]:
    """What each of `count` requests saw: a status code or 'reset'."""
    seen = []
    for _ in range(count):
        try:
            async with api.session.get(api.root + path) as resp:
                seen.append(str(resp.status))
        except aiohttp.ClientConnectionError:
            seen.append("reset")
    return seen


async def test_faults_are_reproducible_for_a_seed(make_api: Callable[..., Any]) -> None:
    faults = Faults(seed=7, rate_limit=0.2, server_error=0.2, reset_before=0.1)
    async with make_api(faults=faults) as api:
        first = await outcomes(api, 60)
    async with make_api(faults=faults) as api:
        second = await outcomes(api, 60)
    assert first == second
    assert {"200", "429", "reset"} <= set(first)
    assert set(first) - {"200", "429", "reset"} <= {"500", "502", "503", "504"}
    assert len(set(first) & {"500", "502", "503", "504"}) >= 2


async def test_injected_429_carries_retry_after_and_a_json_body(
    make_api: Callable[..., Any],
) -> None:
    async with make_api(faults=Faults(rate_limit=1.0, retry_after=0.25)) as api:
        async with api.session.get(api.root + "/status") as resp:
            assert resp.status == 429
            assert resp.headers["x-retry-after"] == "0.250"
            assert resp.headers["Retry-After"] == "1"
            body = await resp.json()
        assert body["error"]["code"] == "RATE_LIMITED"


async def test_reset_before_does_not_apply_and_reset_after_does(
    make_api: Callable[..., Any],
) -> None:
    async with make_api() as api:
        batch_id = await api.create()
        for mode, applied in (("reset_before", 0), ("reset_after", 1)):
            api.emulator.set_faults(Faults(**{mode: 1.0}, endpoints={"push"}))
            with pytest.raises(aiohttp.ClientConnectionError):
                await api.push(batch_id, chunk(mode, values(0, 2)))
            api.emulator.set_faults(None)
            assert api.emulator.faults.injected == {}
            status = await api.status(batch_id)
            assert status["chunks_submitted"] == applied, mode


async def test_endpoint_filter_limits_faults(make_api: Callable[..., Any]) -> None:
    async with make_api(faults=Faults(server_error=1.0, endpoints={"pull"})) as api:
        batch_id = await api.create()
        await api.push(batch_id, chunk("a", values(0, 1)))
        status, body = await api.call("GET", f"/{batch_id}/chunkresults")
        assert status in (500, 502, 503, 504)
        assert body["error"]["code"] == "INJECTED_FAULT"
        assert api.emulator.faults.injected == {"server_error": 1}


def test_faults_validate_their_options() -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        Faults(rate_limit=1.5)
    with pytest.raises(ValueError, match="unknown endpoints"):
        Faults(endpoints={"push", "teleport"})


async def test_faults_can_be_set_over_the_control_plane(make_api: Callable[..., Any]) -> None:
    async with make_api() as api:
        status, body = await api.call(
            "PUT", api.emulator.url + "/_emulator/faults", json={"server_error": 1.0}
        )
        assert (status, body["active"]) == (200, True)
        assert (await outcomes(api, 3))[0] in {"500", "502", "503", "504"}
        status, body = await api.call(
            "PUT", api.emulator.url + "/_emulator/faults", json={"server_error": 3}
        )
        assert status == 400
        assert "server_error" in body["error"]["message"]


async def test_reset_forgets_every_batch(make_api: Callable[..., Any]) -> None:
    async with make_api() as api:
        batch_id = await api.create()
        await api.ok("POST", api.emulator.url + "/_emulator/reset")
        status, body = await api.call("GET", f"/{batch_id}/status")
        assert status == 404


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 401),
        ({"x-synthetic-key": "wrong", "x-tenant-name": "emulator"}, 401),
        ({"x-synthetic-key": "k3y"}, 401),  # an API key needs x-tenant-name
        ({"x-synthetic-key": "k3y", "x-tenant-name": "emulator"}, 200),
        ({"Authorization": "Bearer t0ken"}, 200),
        ({"Authorization": "Bearer nope"}, 401),
        ({"Authorization": "Basic t0ken"}, 401),
    ],
)
async def test_enforced_credentials(
    make_api: Callable[..., Any], headers: dict[str, str], expected: int
) -> None:
    async with make_api(api_key="k3y", token="t0ken") as api:
        status, body = await api.call("GET", "/status", headers=headers)
        assert status == expected
        if expected == 401:
            assert body["error"]["code"] == "UNAUTHORIZED"
            assert "k3y" not in str(body)
            assert "t0ken" not in str(body)


async def test_open_mode_needs_no_credential(api: Api) -> None:
    status, _ = await api.call("GET", "/status")
    assert status == 200


async def test_oauth_client_credentials_flow(make_api: Callable[..., Any]) -> None:
    async with make_api(oauth_clients={"my-app": "s3cret"}) as api:
        token_url = f"{api.emulator.url}/auth/realms/emulator/protocol/openid-connect/token"
        form = {"grant_type": "client_credentials", "client_id": "my-app", "client_secret": "bad"}
        status, body = await api.call("POST", token_url, data=form)
        assert (status, body["error"]["code"]) == (401, "INVALID_CLIENT")
        form["client_secret"] = "s3cret"
        status, body = await api.call("POST", token_url, data=form)
        assert status == 200
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 3600
        token = body["access_token"]
        status, _ = await api.call("GET", "/status", headers={"Authorization": f"Bearer {token}"})
        assert status == 200
        status, _ = await api.call("GET", "/status", headers={"Authorization": "Bearer None"})
        assert status == 401


def test_emulator_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="workers"):
        Emulator(workers=0)
    with pytest.raises(ValueError, match="tenant"):
        Emulator(tenant="a/b")
    with pytest.raises(TypeError, match="callable"):
        Emulator(services={"f/s": 42})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="folder/service"):
        Emulator(services={"no-folder": lambda r: r})
    assert "k3y" not in repr(Emulator(api_key="k3y"))


@pytest.mark.parametrize(
    "body",
    [{"seed": [1]}, {"server_error_statuses": []}, {"server_error_statuses": [200]},
     {"latency_s": -1}, {"nope": 1}],
    ids=["seed-list", "no-statuses", "not-5xx", "negative-latency", "unknown-option"],
)
async def test_bad_fault_settings_are_a_400(make_api: Callable[..., Any], body: Any) -> None:
    async with make_api() as api:
        status, answer = await api.call("PUT", api.emulator.url + "/_emulator/faults", json=body)
        assert status == 400, answer
        assert "invalid faults" in answer["error"]["message"]
        status, _ = await api.call("GET", "/status")
        assert status == 200  # and the API still works
