"""The reward server's error envelope: ``{"error": {"code", "message", "fields"?}}`` (the PrefLab API format)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message", "fields"?}}`` (the PrefLab API format)."""

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields, self.headers = (
            status,
            code,
            message,
            fields,
            headers,
        )

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": {"code": self.code, "message": self.message}}
        if self.fields:
            body["error"]["fields"] = self.fields
        return JSONResponse(body, status_code=self.status, headers=self.headers)
