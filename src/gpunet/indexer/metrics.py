"""Prometheus metrics of one indexer app, in a registry of its own.

A per-app ``CollectorRegistry`` lets several apps live in one process (tests) without
clashing over metric names.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED_ROUTE = "unmatched"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class IndexerMetrics:
    """The indexer's gauges, counters and histograms."""

    registry: CollectorRegistry
    nodes_online: Gauge
    requests: Counter
    latency: Histogram

    @classmethod
    def create(cls) -> IndexerMetrics:
        registry = CollectorRegistry(auto_describe=True)
        return cls(
            registry=registry,
            nodes_online=Gauge(
                "gpunet_nodes_online",
                "Nodes online (not offline, heartbeat recent)",
                registry=registry,
            ),
            requests=Counter(
                "gpunet_http_requests",
                "HTTP requests by method, route template and status",
                ("method", "route", "status"),
                registry=registry,
            ),
            latency=Histogram(
                "gpunet_http_request_duration_seconds",
                "HTTP request latency by route template",
                ("route",),
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request and record its latency."""
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def render(self) -> bytes:
        """The registry in Prometheus' text exposition format."""
        return generate_latest(self.registry)
