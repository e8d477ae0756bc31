"""Base URL resolution, environment precedence and option validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cspark_async import AsyncClient, BaseUrl, ClientOptions, OAuthCredentials, SparkSdkError

KEY = "sk-super-secret-key-123"
TOKEN = "tok-super-secret-456"
SECRET = "client-secret-789"


@pytest.mark.parametrize(
    ("kwargs", "origin", "tenant"),
    [
        pytest.param(
            {"url": "http://127.0.0.1:8080/emulator"},
            "http://127.0.0.1:8080",
            "emulator",
            id="emulator",
        ),
        pytest.param({"url": "http://localhost:9/t/"}, "http://localhost:9", "t", id="slash"),
        pytest.param(
            {"url": "https://excel.uat.us.coherent.global/My-Tenant"},
            "https://excel.uat.us.coherent.global",
            "My-Tenant",
            id="url-tenant-kept",
        ),
        pytest.param(
            {"url": "https://spark.UAT.us.coherent.global/t"},
            "https://excel.uat.us.coherent.global",
            "t",
            id="label-swapped-env-lowered",
        ),
        pytest.param(
            {"url": "https://utility.sit.coherent.global/t"},
            "https://utility.sit.coherent.global",
            "t",
            id="known-label-kept",
        ),
        pytest.param(
            {"url": "https://proxy.example.com", "tenant": "t"},
            "https://proxy.example.com",
            "t",
            id="tenant-argument",
        ),
        pytest.param(
            {"url": "https://proxy.example.com/t", "tenant": "T"},
            "https://proxy.example.com",
            "t",
            id="same-tenant-any-case",
        ),
        pytest.param(
            {"env": "UAT.us", "tenant": "My-Tenant"},
            "https://excel.uat.us.coherent.global",
            "my-tenant",
            id="env+tenant",
        ),
    ],
)
def test_base_url_resolution(kwargs: dict[str, Any], origin: str, tenant: str) -> None:
    base = BaseUrl.resolve(**kwargs)
    assert (base.origin, base.tenant) == (origin, tenant)
    assert base.full == f"{origin}/{tenant}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({}, "CSPARK_BASE_URL", id="nothing"),
        pytest.param({"env": "uat"}, "tenant=", id="env-without-tenant"),
        pytest.param({"url": "ftp://host/t"}, "http", id="scheme"),
        pytest.param({"url": "excel.coherent.global/t"}, "absolute", id="no-scheme"),
        pytest.param({"url": "http://host"}, "no tenant", id="no-tenant"),
        pytest.param({"url": "http://host/a/b"}, "one path segment", id="extra-segments"),
        pytest.param({"url": "http://host/a?x=1"}, "query", id="query"),
        pytest.param({"url": "http://host/a", "tenant": "b"}, "conflicts", id="conflict"),
        pytest.param({"env": "u a t", "tenant": "t"}, "env", id="bad-env"),
        pytest.param({"url": "http://host", "tenant": "a/b"}, "tenant", id="bad-tenant"),
    ],
)
def test_base_url_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SparkSdkError, match=message):
        BaseUrl.resolve(**kwargs)


def test_api_paths_are_encoded() -> None:
    base = BaseUrl("http://h:1", "t")
    assert base.api("batch", "a b/c", "status") == "http://h:1/t/api/v4/batch/a%20b%2Fc/status"


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        pytest.param(
            "https://excel.uat.us.coherent.global",
            "https://keycloak.uat.us.coherent.global/auth/realms/t/protocol/openid-connect/token",
            id="coherent",
        ),
        pytest.param(
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/auth/realms/t/protocol/openid-connect/token",
            id="same-host",
        ),
    ],
)
def test_oauth_token_url(origin: str, expected: str) -> None:
    assert BaseUrl(origin, "t").oauth_token_url == expected


URL = "http://127.0.0.1:1/t"


def test_env_supplies_url_and_key() -> None:
    options = ClientOptions.from_env(environ={"CSPARK_BASE_URL": URL, "CSPARK_API_KEY": KEY})
    assert options.base_url.full == URL
    assert options.api_key == KEY
    assert options.auth_kind == "api_key"


def test_arguments_beat_the_environment() -> None:
    environ = {
        "CSPARK_BASE_URL": "http://other:2/x",
        "CSPARK_API_KEY": "env-key",
        "CSPARK_CLIENT_ID": "id",
        "CSPARK_CLIENT_SECRET": SECRET,
    }
    options = ClientOptions.from_env(URL, token=TOKEN, environ=environ)
    assert options.base_url.full == URL
    # An explicit credential means no credential variable is read at all.
    assert (options.token, options.api_key, options.oauth) == (TOKEN, None, None)
    assert options.auth_kind == "token"


def test_env_oauth_precedence(tmp_path: Path) -> None:
    path = tmp_path / "oauth.json"
    path.write_text(json.dumps({"client_id": "from-file", "client_secret": SECRET}))
    both = ClientOptions.from_env(
        URL,
        environ={
            "CSPARK_CLIENT_ID": "from-env",
            "CSPARK_CLIENT_SECRET": SECRET,
            "CSPARK_OAUTH_PATH": str(path),
            "CSPARK_API_KEY": KEY,
        },
    )
    assert both.oauth == OAuthCredentials("from-env", SECRET)
    assert both.auth_kind == "oauth"  # OAuth wins over the API key
    file_only = ClientOptions.from_env(URL, environ={"CSPARK_OAUTH_PATH": str(path)})
    assert file_only.oauth == OAuthCredentials("from-file", SECRET)


@pytest.mark.parametrize(
    "doc",
    [{"client_id": "a", "client_secret": SECRET}, {"clientId": "a", "clientSecret": SECRET}],
)
def test_oauth_file_both_spellings(tmp_path: Path, doc: dict[str, str]) -> None:
    path = tmp_path / "oauth.json"
    path.write_text(json.dumps(doc))
    assert ClientOptions.from_env(URL, oauth=path).oauth == OAuthCredentials("a", SECRET)
    assert ClientOptions.from_env(URL, oauth=str(path)).oauth == OAuthCredentials("a", SECRET)


@pytest.mark.parametrize(
    ("oauth", "message"),
    [
        pytest.param({"client_id": "a"}, "client_secret", id="missing-secret"),
        pytest.param("/does/not/exist.json", "cannot read", id="missing-file"),
        pytest.param(42, "oauth must be", id="wrong-type"),
    ],
)
def test_bad_oauth(oauth: Any, message: str) -> None:
    with pytest.raises(SparkSdkError, match=message):
        ClientOptions.from_env(URL, oauth=oauth, environ={})


def test_bearer_prefix_is_stripped() -> None:
    assert ClientOptions.from_env(URL, token=f"Bearer {TOKEN}", environ={}).token == TOKEN
    assert ClientOptions.from_env(URL, token=f"bearer   {TOKEN}", environ={}).token == TOKEN


def test_open_sends_nothing_but_counts_as_a_credential() -> None:
    assert ClientOptions.from_env(URL, api_key="open", environ={}).auth_kind == "open"
    assert ClientOptions.from_env(URL, token="open", environ={}).auth_kind == "open"


def test_missing_credential_names_arguments_and_variables() -> None:
    with pytest.raises(SparkSdkError) as info:
        ClientOptions.from_env(URL, environ={})
    for name in (
        "api_key=",
        "CSPARK_API_KEY",
        "CSPARK_BEARER_TOKEN",
        "CSPARK_CLIENT_ID",
        "CSPARK_OAUTH_PATH",
        "'open'",
    ):
        assert name in str(info.value)


def test_client_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSPARK_BASE_URL", URL)
    monkeypatch.setenv("CSPARK_API_KEY", KEY)
    client = AsyncClient()  # no loop, no session yet: construction does no I/O
    assert client.base_url.full == URL
    assert client.options.auth_kind == "api_key"
    assert client._http.session is None


def test_max_retries_zero_is_kept() -> None:
    options = ClientOptions.from_env(
        URL, api_key=KEY, max_retries=0, retry_interval=0.5, timeout=1.5, environ={}
    )
    assert (options.max_retries, options.retry_interval, options.timeout) == (0, 0.5, 1.5)
    assert ClientOptions.from_env(URL, api_key=KEY, timeout=None, environ={}).timeout is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_retries": True},
        {"timeout": 0},
        {"timeout": -1},
        {"timeout": float("inf")},
        {"retry_interval": -0.1},
        {"retry_interval": float("nan")},
    ],
)
def test_invalid_numbers(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SparkSdkError):
        ClientOptions.from_env(URL, api_key=KEY, environ={}, **kwargs)


def test_secrets_never_in_repr_or_str(tmp_path: Path) -> None:
    options = [
        ClientOptions.from_env(URL, api_key=KEY, environ={}),
        ClientOptions.from_env(URL, token=TOKEN, environ={}),
        ClientOptions.from_env(
            URL, oauth={"client_id": "cid", "client_secret": SECRET}, environ={}
        ),
    ]
    for opts in options:
        for text in (repr(opts), str(opts), repr(AsyncClient.from_options(opts))):
            assert KEY not in text
            assert TOKEN not in text
            assert SECRET not in text
    assert "cid" in repr(options[2])  # the client id is not a secret
    assert "****" in repr(options[0])
