"""Middleware: turn a database outage into a retryable 503 instead of a 500."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse

log = logging.getLogger(__name__)
RETRY_AFTER_S = 2


class DatabaseUnavailableMiddleware:
    """A request that fails because the database is unreachable (restart, failover) gets
    ``503 {"error": {"code": "unavailable", "retryable": true}}`` with ``Retry-After``. Writes are
    transactional and submits idempotent, so retrying is always safe. The broken connection is closed by
    Django at the end of the request (``close_if_unusable_or_obsolete``), so the next request reconnects."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        response = JsonResponse(
            {
                "error": {
                    "code": "unavailable",
                    "message": "The database is temporarily unavailable; retry the request.",
                    "retryable": True,
                }
            },
            status=503,
        )
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
