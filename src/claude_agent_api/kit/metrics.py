"""Prometheus metrics, in a registry owned by the app (so several apps in one process do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "caa_http_requests_total",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "caa_http_request_duration_seconds",
            "HTTP request latency by method and route template (time to response start for streams).",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.active_runs = Gauge("caa_active_runs", "Agent runs executing on this instance.", registry=self.registry)
        self.runs = Counter(
            "caa_runs_total",
            "Agent runs finished on this instance, by final status.",
            ["status"],
            registry=self.registry,
        )

        self.agent_starts = Counter(
            "caa_agent_turns_total",
            "Agent turns by how the agent was obtained: cold (a new CLI process) or warm (a kept process).",
            ["kind"],
            registry=self.registry,
        )
        self.warm_agents = Gauge(
            "caa_warm_agents", "Idle agents kept connected on this instance.", registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
