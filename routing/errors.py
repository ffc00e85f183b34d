"""Errors in OpenAI's format, the one every proxy endpoint answers with."""

from __future__ import annotations

from typing import Protocol

import orjson
from django.http import HttpResponse


class WireFormat(Protocol):
    def error_body(self, status: int, openai_error: bytes) -> bytes: ...


class GatewayError(Exception):
    """A request the gateway refuses; rendered as `{"error": {...}}` with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(
        self, extra_headers: dict[str, str] | None = None, *, wire: WireFormat | None = None
    ) -> HttpResponse:
        body = orjson.dumps(self.body())
        if wire is not None:
            body = wire.error_body(self.status, body)
        response = HttpResponse(body, status=self.status, content_type="application/json")
        for name, value in {**self.headers, **(extra_headers or {})}.items():
            response[name] = value
        return response


def unauthorized(message: str, code: str) -> GatewayError:
    return GatewayError(401, message, type="invalid_request_error", code=code)
