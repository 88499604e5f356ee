"""The reward server's Prometheus metrics (``GET /metrics``)."""

from __future__ import annotations


class ServerMetrics:
    """Prometheus metrics in the app's own registry (several apps may live in one test process)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "preflab_rm_requests", "Scoring requests", ["route", "status"], registry=self.registry
        )
        self.items = Counter("preflab_rm_items", "Items scored", ["route"], registry=self.registry)
        self.latency = Histogram(
            "preflab_rm_request_seconds",
            "Request latency",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.batch_items = Histogram(
            "preflab_rm_batch_items",
            "Items per forward",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.batch_tokens = Histogram(
            "preflab_rm_batch_padded_tokens",
            "Padded tokens per forward",
            buckets=(64, 256, 1024, 4096, 8192, 16384, 65536),
            registry=self.registry,
        )
        self.forward_seconds = Histogram(
            "preflab_rm_forward_seconds",
            "Forward pass time",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.queue_depth = Gauge("preflab_rm_queue_depth", "Inputs waiting", registry=self.registry)
        self.truncated = Counter("preflab_rm_truncated_items", "Inputs cut", registry=self.registry)
        self.swaps = Counter("preflab_rm_model_swaps", "Hot swaps", registry=self.registry)
        self.model_version = Gauge("preflab_rm_model_version", "Version served", registry=self.registry)

    def on_forward(self, items: int, padded_tokens: int, seconds: float) -> None:
        self.batch_items.observe(items)
        self.batch_tokens.observe(padded_tokens)
        self.forward_seconds.observe(seconds)
