"""The routes that say how the server is: `GET /health` (the process is up), `GET /ready` (the
model is loaded and has answered), `GET /model` (what model this is) and `GET /metrics`
(Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from digits.inference.predictor import Predictor
from digits.reading.preprocess import PREPROCESSORS
from digits.serving.metrics import ServerMetrics
from digits.serving.responses import ERRORS, HealthAnswer, ModelAnswer, ReadyAnswer
from digits.serving.served_model import ServedModel


def ready_predictor(served: ServedModel) -> Predictor:
    """The served model's predictor, or 503 while it loads (or when it never will)."""
    if served.predictor is None:
        raise HTTPException(503, served.not_ready)
    return served.predictor


def status_routes(
    served: ServedModel, metrics: ServerMetrics, source: str, preprocess: str
) -> APIRouter:
    """The status routes of the model `served` from the file `source`."""
    router = APIRouter()

    @router.get("/health")
    def health() -> HealthAnswer:
        """The server process is up (the model may still be loading: see /ready)."""
        return HealthAnswer(status="ok")

    @router.get("/ready", responses={503: ERRORS[503]})
    def ready() -> ReadyAnswer:
        """The model is loaded and has answered a blank image: requests will be answered."""
        ready_predictor(served)
        return ReadyAnswer(status="ready")

    @router.get("/model", responses={503: ERRORS[503]})
    def model() -> ModelAnswer:
        """What model this server answers with: read from its file, nothing typed twice."""
        ready_predictor(served)
        return model_answer(served.metadata, source, preprocess)

    @router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
    def metrics_page() -> PlainTextResponse:
        """Prometheus' text format: requests by route and status, latency, images per model
        call (batching), model load time, readiness."""
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def model_answer(metadata: dict[str, str], source: str, preprocess: str) -> ModelAnswer:
    """/model's answer from an exported model's metadata (digits.exported.formats.metadata)."""
    accuracy = metadata.get("test_accuracy")
    first_sentence = " ".join((PREPROCESSORS[preprocess].__doc__ or "").split()).split(". ")[0]
    return ModelAnswer(
        name=metadata.get("model", "unknown"),
        reads="numbers" if metadata.get("reads") == "numbers" else "digits",
        file=source,
        checkpoint=metadata.get("checkpoint") or None,
        run=metadata.get("run") or None,
        parent=metadata.get("parent") or None,
        test_accuracy=float(accuracy) if accuracy else None,
        temperature=float(metadata.get("temperature", 1.0)),
        input=metadata.get("input", ""),
        preprocessing=metadata.get("preprocessing", ""),
        server_preprocess=f"preprocess={preprocess}: {first_sentence.rstrip('.')}.",
        digits_version=metadata.get("digits_version", ""),
        commit=metadata.get("commit") or None,
    )
