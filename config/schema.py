"""OpenAPI schema generation tuned to the house style.

- Serializers nest inside the view that owns them (``TaskSubmitApi.InputSerializer``), so component names
  take the owning class as a prefix (``TaskSubmitApiInput``) instead of colliding as ``Input`` across views.
- Every operation documents the error statuses it can answer with the one error envelope
  (``annotation.api.errors``): ``document_error_responses``, a postprocessing hook, adds them once for all
  views instead of each view repeating them.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from annotation.api.errors import ERROR_SCHEMA

ERROR_REF = {"$ref": "#/components/schemas/Error"}

# Why each error status can happen, and on which operations (see docs/api.md, "Errors").
ERROR_STATUSES: dict[str, str] = {
    "400": "Invalid input: a body field or query parameter is malformed, out of range or breaks a rule "
    "(``fields`` names each one and why).",
    "401": "Not authenticated: no valid session or API token.",
    "403": "Permission denied: the token lacks the scope, or the user the role, this needs.",
    "404": "Not found: the object (or a project or object named in the request) does not exist or is not "
    "visible to you; also an invalid pagination cursor.",
    "409": "Conflict with the current state (e.g. a duplicate, or an idempotency key used on another task).",
    "413": "The request body is over the size limit (PREFLAB_MAX_REQUEST_BYTES).",
    "429": "Throttled: the token's per-minute request limit is spent; retry after ``Retry-After`` seconds.",
}
_UNSAFE = {"post", "put", "patch", "delete"}
# What the server refuses in any text (PostgreSQL stores no NUL character), and in a required text field
# (DRF trims whitespace, so "  " is blank): said in the schema so a client can tell before sending.
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\x00\s][^\x00]*$"
# For a body field: drf-spectacular adds the empty string as a ``oneOf`` branch of its own where blank is
# allowed, so the pattern itself must not match "" (else "" would match both branches).
NOT_EMPTY = r"^[^\x00]+$"
# DRF lists every configured parser for every body; the typed contract is JSON (form encodings have no
# null, number or nested object), so a body documented with exactly these is documented as JSON only.
# Views that take an upload say so with their own ``request={"multipart/form-data": ...}``.
_PARSER_MEDIA_TYPES = {"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}


class PrefLabAutoSchema(AutoSchema):
    def get_serializer_name(self, serializer, direction) -> str:
        cls = serializer.__class__
        parts = cls.__qualname__.split(".")
        if len(parts) > 1 and "<locals>" not in parts:
            return "".join(parts[-2:])
        return cls.__name__

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and not {"format", "enum", "pattern"} & set(schema)
            and not any(hasattr(v, "regex") for v in field.validators)  # its own pattern comes later
        ):
            schema["pattern"] = NOT_BLANK if field.trim_whitespace and not field.allow_blank else NOT_EMPTY
        return schema


def _error_statuses(method: str, operation: dict) -> list[str]:
    """The error statuses this operation can answer with (a superset is honest; a gap fails clients)."""
    parameters = operation.get("parameters", [])
    has_query = any(p.get("in") == "query" for p in parameters)
    has_body = "requestBody" in operation
    takes_input = has_query or has_body or method in _UNSAFE
    statuses = ["401", "403", "429"]
    if takes_input:
        statuses.append("400")
    if takes_input or parameters:
        statuses.append("404")
    if method in _UNSAFE:
        statuses.append("409")
    if has_body:
        statuses.append("413")
    return sorted(statuses)


def document_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: the ``Error`` component, its statuses on every operation, and
    ``allowEmptyValue`` on optional query parameters (``?n_boot=`` means "not given", as DRF and
    django-filter read it), and request bodies documented as JSON unless a view says otherwise."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            body = operation.get("requestBody", {}).get("content", {})
            if set(body) == _PARSER_MEDIA_TYPES:
                operation["requestBody"]["content"] = {"application/json": body["application/json"]}
            responses = operation["responses"]
            for status in _error_statuses(method, operation):
                responses.setdefault(status, {"description": ERROR_STATUSES[status]})
            for status, documented in responses.items():  # also a view's own, e.g. a GET's 409
                if status.startswith("4"):
                    documented.setdefault("content", {"application/json": {"schema": ERROR_REF}})
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "query":
                    continue
                if not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
                schema = parameter.get("schema", {})
                if schema.get("type") == "string" and not {"format", "enum", "pattern"} & set(schema):
                    schema["pattern"] = NO_NUL
    return result
