"""What conf/serve.yaml sets for the app, as the routes read it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeOptions:
    """What conf/serve.yaml sets for the app (checked by digits.config.schema.ServeConfig)."""

    preprocess: str  # how images are made MNIST-like
    top_k: int  # for requests that do not set it
    min_confidence: float  # for requests that do not set it
    max_upload_bytes: int  # one image (and the body of /predict)
    max_batch_images: int  # images in one /predict/batch request
    body_timeout_s: float
    read_timeout_s: float  # reading one image as a number; past it: 503, and its work stops
    cors_origins: tuple[str, ...]  # none: no CORS headers, other sites' pages cannot call
    batch_images: int  # concurrent requests' images per model call (1: a call per request)
    batch_wait_s: float  # how long the first waits for others to join its call
