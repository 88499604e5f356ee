"""Observability: structured JSON logs, Prometheus metrics for the web app and Celery workers.

- ``LOG_FORMAT=json`` switches every log line to one JSON object (timestamp, level, logger, message, extra).
- The web app exposes ``/metrics`` (request counts and latency by route and status). Under gunicorn with
  several workers set ``PROMETHEUS_MULTIPROC_DIR`` to a shared empty directory so the numbers add up.
- Celery workers count tasks by name and outcome and time them; set ``PREFLAB_WORKER_METRICS_PORT`` to
  expose them over HTTP from each worker.
"""

from __future__ import annotations

import json
import logging
import os
import time

from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

HTTP_REQUESTS = Counter(
    "preflab_http_requests_total", "HTTP requests served by the web app", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "preflab_http_request_seconds",
    "Web request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TASKS = Counter("preflab_celery_tasks_total", "Celery tasks finished", ["task", "outcome"])
TASK_SECONDS = Histogram(
    "preflab_celery_task_seconds",
    "Celery task run time",
    ["task"],
    buckets=(0.1, 1, 10, 60, 600, 3600, 36000),
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra attributes passed with ``extra=`` are kept."""

    _standard = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._standard and not key.startswith("_"):
                payload[key] = (
                    value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
                )
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def _route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is not None and match.route:
        return "/" + match.route
    return "unmatched"


class PrometheusMiddleware:
    """Counts and times every request by route pattern (not raw path, to keep label cardinality low)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        route = _route_of(request)
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method, route).observe(time.perf_counter() - start)
        return response


def metrics_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return DEFAULT_REGISTRY


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)


def connect_celery_signals() -> None:
    """Count and time Celery tasks in worker processes."""
    from celery import signals

    started: dict[str, float] = {}

    @signals.task_prerun.connect(weak=False)
    def _prerun(task_id=None, task=None, **kwargs):
        started[task_id] = time.perf_counter()

    @signals.task_postrun.connect(weak=False)
    def _postrun(task_id=None, task=None, state=None, **kwargs):
        begin = started.pop(task_id, None)
        name = getattr(task, "name", "unknown")
        TASKS.labels(name, (state or "unknown").lower()).inc()
        if begin is not None:
            TASK_SECONDS.labels(name).observe(time.perf_counter() - begin)

    @signals.worker_ready.connect(weak=False)
    def _serve_metrics(**kwargs):
        port = os.environ.get("PREFLAB_WORKER_METRICS_PORT")
        if port:
            from prometheus_client import start_http_server

            start_http_server(int(port), addr=os.environ.get("PREFLAB_WORKER_METRICS_ADDR", "127.0.0.1"))
