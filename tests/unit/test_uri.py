"""UriParams: every documented locator form."""

from __future__ import annotations

import pytest

from cspark_async import SparkSdkError, UriParams

SID = "6f1c4f0e-6f4e-4d59-9c38-8b0d2f6a8c11"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "my-folder/my-service",
            UriParams(folder="my-folder", service="my-service"),
            id="folder/service",
        ),
        pytest.param(
            "f/s[1.4.3]", UriParams(folder="f", service="s", version="1.4.3"), id="with-version"
        ),
        pytest.param("f/s[1.4]", UriParams(folder="f", service="s", version="1.4"), id="minor"),
        pytest.param("f/s[]", UriParams(folder="f", service="s"), id="empty-version"),
        pytest.param("/folders/f/services/s", UriParams(folder="f", service="s"), id="long-form"),
        pytest.param(
            "folders/f/services/s[2]",
            UriParams(folder="f", service="s", version="2"),
            id="long-form-version",
        ),
        pytest.param("  f/s  ", UriParams(folder="f", service="s"), id="whitespace"),
        pytest.param(f"service/{SID}", UriParams(service_id=SID), id="service-id"),
        pytest.param(f"version/{SID}", UriParams(version_id=SID), id="version-id"),
        pytest.param(SID, UriParams(service_id=SID), id="bare-uuid"),
        pytest.param(SID.upper(), UriParams(service_id=SID.upper()), id="bare-uuid-upper"),
    ],
)
def test_parse(text: str, expected: UriParams) -> None:
    assert UriParams.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("just-a-service", id="one-segment"),
        pytest.param("a/b/c", id="three-segments"),
        pytest.param("f/s[1", id="unclosed-bracket"),
        pytest.param("f/s[1]x", id="trailing"),
        pytest.param("f /s", id="space-in-name"),
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(SparkSdkError, match="invalid service URI"):
        UriParams.parse(text)


def test_service_uri_and_validate() -> None:
    assert UriParams(folder="f", service="s", version="1").service_uri == "f/s[1]"
    assert UriParams(folder="f", service="s").service_uri == "f/s"
    assert UriParams(service_id=SID).service_uri is None
    assert UriParams(version_id=SID).validate() == UriParams(version_id=SID)
    with pytest.raises(SparkSdkError, match="service name is missing"):
        UriParams(folder="f").validate()
    with pytest.raises(SparkSdkError, match="folder name is missing"):
        UriParams(service="s").validate()
    with pytest.raises(SparkSdkError, match="required"):
        UriParams().validate()


def test_of_passes_instances_through() -> None:
    params = UriParams(folder="f", service="s")
    assert UriParams.of(params) is params
    assert UriParams.of("f/s") == params
