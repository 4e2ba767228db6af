"""The server's settings: conf/serve.yaml's keys, each declared once, here (its schema is derived
from this class), and read by the routes and `digits.serve`."""

from dataclasses import dataclass
from typing import Annotated

from digits.config.schema import schema_of, store_schemas
from digits.constraints import OneOf, Range
from digits.inference.prediction import CONFIDENCE, READ_TIMEOUT, TOP_K
from digits.reading.preprocess import PREPROCESSORS

Seconds = Annotated[float, Range(gt=0, le=600)]


@dataclass(frozen=True)
class ServeOptions:
    """What `digits.serve` runs with: conf/serve.yaml documents each setting."""

    ckpt_path: str
    host: str
    port: Annotated[int, Range(ge=1, le=65535)]
    preprocess: Annotated[str, OneOf(tuple(PREPROCESSORS))]  # how images are made MNIST-like
    top_k: Annotated[int, TOP_K]  # for requests that do not set it
    min_confidence: Annotated[float, CONFIDENCE]  # for requests that do not set it
    max_upload_mb: Annotated[float, Range(gt=0, le=100, note="what one image may be")]
    max_batch_images: Annotated[int, Range(ge=1, le=256, note="images in one /predict/batch")]
    # Concurrent requests' images per model call (1: a call per request), and how long the first
    # waits for others to join its call.
    batch_images: Annotated[int, Range(ge=1, le=1024, note="images in one model call")]
    batch_wait_ms: Annotated[float, Range(ge=0, le=100)]
    read_timeout_s: Annotated[float, READ_TIMEOUT]  # past it: 503, and the reading stops
    body_timeout_s: Seconds
    header_timeout_s: Seconds
    keep_alive_s: Annotated[float, Range(gt=0, le=3600)]
    cors_origins: list[str]  # none: no CORS headers, other sites' pages cannot call
    root_path: str
    access_log: bool

    @property
    def max_upload_bytes(self) -> int:
        """One image (and the body of /predict), in bytes."""
        return int(self.max_upload_mb * 2**20)

    @property
    def batch_wait_s(self) -> float:
        return self.batch_wait_ms / 1000


store_schemas(serve=schema_of(ServeOptions))
