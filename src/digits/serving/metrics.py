"""`GET /metrics`: what `digits.serve` has done, in Prometheus' text format (the official
prometheus_client): requests by route and status, their latency, images per model call (how well
concurrent requests are batched), the model's load time and whether it is ready."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from digits.serving.batching import Model
    from digits.serving.served_model import ServedModel

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
IMAGE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    """The server's metrics, in a registry of its own (one per app)."""

    def __init__(self, served: ServedModel) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "digits_requests", "HTTP requests answered, by route and status",
            ["route", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "digits_request_seconds", "Time from a request's start to its answer's start",
            ["route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.images_per_call = Histogram(
            "digits_model_call_images", "Images per model call (concurrent requests batched)",
            buckets=IMAGE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        Gauge("digits_model_load_seconds", "How long the model took to load and first answer",
              registry=self.registry).set_function(lambda: served.load_seconds or 0.0)  # fmt: skip
        Gauge("digits_ready", "1 once the model is loaded and has answered, else 0",
              registry=self.registry).set_function(lambda: float(served.predictor is not None))  # fmt: skip


class CountedModel:
    """A model whose calls are counted in ServerMetrics.images_per_call."""

    def __init__(self, model: Model, metrics: ServerMetrics) -> None:
        self.model, self.metadata, self.metrics = model, model.metadata, metrics

    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        self.metrics.images_per_call.observe(len(images))
        return self.model.probabilities(images, batch_size)


class RequestMetrics:
    """ASGI middleware counting each HTTP request by its route's path (unknown paths as "other",
    so that no client can make new series) and status, and timing it."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, answered = time.perf_counter(), False

        def count(status: int) -> None:
            route = getattr(scope.get("route"), "path", "other")
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            self.metrics.requests.labels(route, str(status)).inc()

        async def sending(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
                count(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if not answered:  # Starlette's outermost handler answers it 500
                count(500)
            raise
