"""One error body for every API error:

{"error": {"code": "invalid", "message": "...", "fields": {"field": ["reason", ...]}}}

``ERROR_SCHEMA`` is the same body as an OpenAPI component; ``config.schema.document_error_responses``
puts it on every operation's error statuses (docs/api.md, "Errors").
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

ERROR_SCHEMA: dict = {
    "type": "object",
    "description": "Every API error: a stable machine code, one readable message, and per-field reasons.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Machine-readable: invalid, not_found, permission_denied, "
                    "not_authenticated, throttled, conflict, too_large, ...",
                },
                "message": {"type": "string", "description": "The first problem, readable."},
                "fields": {
                    "type": "object",
                    "description": "Reasons per request field (body or query parameter), when a field is at fault.",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}


def _flatten(detail) -> tuple[str, dict]:
    if isinstance(detail, dict):
        fields = {k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in detail.items()}
        first_key = next(iter(fields), None)
        message = f"{first_key}: {fields[first_key][0]}" if first_key else "Invalid input."
        if first_key == "non_field_errors":
            message = fields[first_key][0]
        return message, fields
    if isinstance(detail, list):
        return (str(detail[0]) if detail else "Invalid input."), {}
    return str(detail), {}


def error_response(code: str, message: str, http_status: int, fields: dict | None = None) -> Response:
    body = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return Response(body, status=http_status)


def exception_handler(exc, context):
    from annotation.services.judgments import IdempotencyKeyConflict

    if isinstance(exc, IdempotencyKeyConflict):  # a replayed key that belongs to another task: 409
        message, fields = _flatten(exc.message_dict)
        return error_response("conflict", message, status.HTTP_409_CONFLICT, fields)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "message_dict") else exc.messages)
    # Map Django's own exceptions to DRF's first, so the body's code is "not_found"/"permission_denied".
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        # A service's reason ("No one clears a flag about themselves...") reaches the caller.
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, IntegrityError):
        return error_response("conflict", f"Conflicts with existing data: {exc}", status.HTTP_409_CONFLICT)
    if isinstance(exc, DataError):  # e.g. a NUL character in a JSON field: PostgreSQL cannot store it
        return error_response(
            "invalid", f"The database cannot store this value: {exc}", status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return error_response(
            "too_large",
            f"The request body is over {limit} bytes (PREFLAB_MAX_REQUEST_BYTES).",
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        if isinstance(codes, str):
            code = codes
    message, fields = _flatten(response.data)
    body = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    response.data = body
    return response
