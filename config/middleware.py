"""Middleware: refuse oversized request bodies before anything reads them, and turn a database outage into a
retryable 503 instead of a 500."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.urls import Resolver404, resolve

log = logging.getLogger(__name__)
RETRY_AFTER_S = 2


# Routes that take file uploads, and so bodies up to PREFLAB_MAX_IMPORT_BYTES.
UPLOAD_ROUTES = {"project-import", "import-upload"}


class RequestSizeLimitMiddleware:
    """A body declared larger than the route takes answers 413 before anything reads it. Django caps form
    fields (``DATA_UPLOAD_MAX_MEMORY_SIZE``) but not files, and spools a multipart file to disk as soon as
    anything reads the form, the CSRF check included, so without this an anonymous POST could write temp
    files of any size. Upload routes take ``PREFLAB_MAX_IMPORT_BYTES``; every other route
    ``PREFLAB_MAX_REQUEST_BYTES`` (``DATA_UPLOAD_MAX_MEMORY_SIZE``). A WSGI request with no
    ``Content-Length`` has an empty body in Django, so the declared length is the whole story."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django reads such a body as empty
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            setting = "PREFLAB_MAX_REQUEST_BYTES"
            if self._takes_uploads(request):
                limit, setting = settings.PREFLAB_MAX_IMPORT_BYTES, "PREFLAB_MAX_IMPORT_BYTES"
            if length > limit:
                message = f"The request body is {length} bytes; this route takes at most {limit} ({setting})."
                return JsonResponse({"error": {"code": "too_large", "message": message}}, status=413)
        return self.get_response(request)

    @staticmethod
    def _takes_uploads(request: HttpRequest) -> bool:
        try:
            return resolve(request.path_info).url_name in UPLOAD_ROUTES
        except Resolver404:
            return False


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
