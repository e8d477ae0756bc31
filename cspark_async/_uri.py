"""`UriParams`: which service a batch runs, parsed from every locator form Spark documents."""

from __future__ import annotations

import re
from typing import Final

from attrs import frozen

from ._exceptions import SparkSdkError

__all__ = ["UriParams"]

_UUID: Final = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_NAME: Final = r"[^/\[\]\s]+"
_FOLDER_SERVICE: Final = re.compile(
    rf"^(?:folders/)?(?P<folder>{_NAME})/(?:services/)?(?P<service>{_NAME})"
    r"(?:\[(?P<version>[^\[\]]*)\])?$"
)
_BY_ID: Final = re.compile(rf"^(?P<kind>service|version)/(?P<id>{_NAME})$")

_FORMS: Final = (
    "'folder/service', 'folder/service[1.2.3]', 'folders/f/services/s', "
    "'service/{service_id}', 'version/{version_id}' or a service UUID"
)


@frozen(kw_only=True)
class UriParams:
    """A service locator. Build it directly or parse one with `UriParams.parse()`:

    ```python
    UriParams(folder="my-folder", service="my-service", version="0.4.2")
    UriParams.parse("my-folder/my-service[0.4.2]")
    UriParams.parse("version/7d1b3c1e-...")   # -> UriParams(version_id=...)
    ```
    """

    folder: str | None = None
    service: str | None = None
    version: str | None = None
    version_id: str | None = None
    service_id: str | None = None

    @classmethod
    def parse(cls, uri: str) -> UriParams:
        """Parse `folder/service[version]`, `/folders/f/services/s[version]`,
        `service/{id}`, `version/{id}` or a bare service UUID.

        Raises:
            SparkSdkError: the text matches none of these forms.
        """
        if not isinstance(uri, str):
            raise SparkSdkError(f"a service URI must be a string, got {type(uri).__name__}")
        text = uri.strip().strip("/")
        if _UUID.match(text):
            return cls(service_id=text)
        by_id = _BY_ID.match(text)
        if by_id is not None:
            if by_id["kind"] == "service":
                return cls(service_id=by_id["id"])
            return cls(version_id=by_id["id"])
        match = _FOLDER_SERVICE.match(text)
        if match is None:
            raise SparkSdkError(f"invalid service URI {uri!r}: expected {_FORMS}")
        return cls(
            folder=match["folder"],
            service=match["service"],
            version=(match["version"] or "").strip() or None,
        )

    @classmethod
    def of(cls, uri: str | UriParams) -> UriParams:
        """`uri` itself when it is already a `UriParams`, else `parse(uri)`."""
        return uri if isinstance(uri, UriParams) else cls.parse(uri)

    @property
    def service_uri(self) -> str | None:
        """`folder/service[version]`, or None without both folder and service."""
        if not (self.folder and self.service):
            return None
        return f"{self.folder}/{self.service}" + (f"[{self.version}]" if self.version else "")

    def validate(self) -> UriParams:
        """Self, if it names a service.

        Raises:
            SparkSdkError: it names nothing, or a folder without a service (or the reverse).
        """
        if self.service_id or self.version_id or self.service_uri:
            return self
        if self.folder and not self.service:
            raise SparkSdkError(f"service name is missing in {self!r}; expected {_FORMS}")
        if self.service and not self.folder:
            raise SparkSdkError(f"folder name is missing in {self!r}; expected {_FORMS}")
        raise SparkSdkError(f"a service locator is required; expected {_FORMS}")
