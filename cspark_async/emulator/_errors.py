"""The one error type the emulator's engine raises; the web layer renders it as JSON."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["EmulatorError"]


class EmulatorError(Exception):
    """An API error: HTTP status plus an UPPER_SNAKE code (the body format the emulator
    assumes; Spark documents none)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    @classmethod
    def bad_request(cls, message: str, code: str = "BAD_REQUEST") -> EmulatorError:
        return cls(400, code, message)

    @classmethod
    def not_found(cls, message: str, code: str = "NOT_FOUND") -> EmulatorError:
        return cls(404, code, message)

    @classmethod
    def conflict(cls, message: str, code: str = "CONFLICT") -> EmulatorError:
        return cls(409, code, message)
