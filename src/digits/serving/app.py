"""The FastAPI app: `GET /` (the page), `POST /predict` (an image in, the prediction record out, as
`digits.predict output=json` prints it), `GET /health` (the process is up), `GET /ready` (the model
is loaded and has answered), `GET /model` (what model this is), and FastAPI's `/docs`.

No route takes a file path; request bodies are limited in size (digits.serving.limits); every
answer and refusal has its schema in `/openapi.json` (digits.serving.responses), a refusal being a
4xx (503 before the model is ready) with a one-line JSON body `{"error": "..."}`."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

import digits
from digits.config.schema import CONFIDENCE, TOP_K
from digits.errors import DigitsError
from digits.exported.onnx_model import OnnxModel
from digits.inference.prediction import MODES, Prediction
from digits.inference.predictor import Predictor, to_classify, to_png
from digits.reading.images import ImageTooLarge
from digits.reading.preprocess import PREPROCESSORS
from digits.serving.limits import BodySizeLimit, BodyTimeout
from digits.serving.loading import ServedModel
from digits.serving.responses import (
    ERRORS,
    DigitAnswer,
    HealthAnswer,
    ModelAnswer,
    NumberAnswer,
    ReadyAnswer,
    error_response,
)

log = logging.getLogger(__name__)
PAGE = Path(__file__).parent / "page"
UPLOAD = "upload"  # the file name of a raw-body upload, in the record's "file"
PREDICT_BODY = {  # for /docs: the endpoint reads the body itself, so FastAPI cannot describe it
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"image": {"type": "string", "format": "binary"}},
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


async def uploaded_image(request: Request) -> tuple[str, bytes]:
    """The file name and bytes of the image: a form's one file, or the raw body."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form(max_files=1, max_fields=10)
        files = [value for value in form.values() if isinstance(value, UploadFile)]
        if not files:
            raise HTTPException(400, "the form holds no file: send the image as a file field")
        return Path(files[0].filename or UPLOAD).name, await files[0].read()
    return UPLOAD, await request.body()


def create_app(
    load: Callable[[], OnnxModel],
    source: str,
    *,
    preprocess: str,
    max_upload_bytes: int,
    top_k: int,
    min_confidence: float,
    body_timeout_s: float,
    on_load_failure: Callable[[], None] | None = None,
) -> FastAPI:
    """The app around the model `load` returns (loaded in the background once the app starts;
    `source`: the file it comes from); `preprocess` is the way images are made MNIST-like;
    `top_k` and `min_confidence` answer requests that do not set them."""
    default_top_k, default_min_confidence = top_k, min_confidence
    served = ServedModel(load, on_load_failure)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        served.start()
        yield

    app = FastAPI(
        title="digits",
        version=digits.__version__,
        description="Handwritten digit recognition (the model: GET /model).",
        lifespan=lifespan,
    )
    app.state.served = served
    app.add_middleware(BodySizeLimit, max_bytes=max_upload_bytes)
    app.add_middleware(BodyTimeout, seconds=body_timeout_s)

    def ready_predictor() -> Predictor:
        if served.predictor is None:
            raise HTTPException(503, served.not_ready)
        return served.predictor

    # A client that goes away mid-upload is no error of the server's: one line in its log.
    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, error: ClientDisconnect) -> Response:
        log.info(
            "%s %s: the client went away before its upload ended", request.method, request.url.path
        )
        return Response(status_code=400)

    # Starlette's own refusals (404, a form over its limits) raise its HTTPException, FastAPI's base.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        return error_response(422, f"{where}: {problem['msg']}")

    def classify(
        name: str, data: bytes, top_k: int, min_confidence: float, mode: str
    ) -> tuple[Prediction, Any]:
        """The upload's Prediction, and the 28x28 image the network saw (mode=digit)."""
        if mode != "digit" and preprocess == "naive":
            raise HTTPException(
                422, f"mode={mode} needs preprocess=mnist or mnist_v1 (the server's is naive)"
            )
        predictor = ready_predictor()
        try:
            prediction, images = predictor.read(Path(name), preprocess, mode, io.BytesIO(data))
        except ImageTooLarge as error:
            raise HTTPException(413, str(error)) from error
        except DigitsError as error:
            raise HTTPException(400, str(error)) from error
        if not images:
            return prediction, None
        predictor.classify(
            to_classify([prediction]), torch.stack(images), top_k, min_confidence=min_confidence
        )
        return prediction, images[0] if prediction.digits is None else None

    @app.post(
        "/predict",
        openapi_extra=PREDICT_BODY,
        response_model=DigitAnswer | NumberAnswer,
        response_model_exclude_unset=True,
        responses=ERRORS,
    )
    async def predict(
        request: Request,
        top_k: Annotated[int, Query(ge=TOP_K.ge, le=TOP_K.le)] = default_top_k,
        image: Annotated[bool, Query(description="add the 28x28 image the network saw")] = False,
        min_confidence: Annotated[
            float,
            Query(
                ge=CONFIDENCE.ge,
                le=CONFIDENCE.le,
                allow_inf_nan=False,
                description="below it: unsure, no digit, the top two",
            ),
        ] = default_min_confidence,
        mode: Annotated[
            Literal[MODES],
            Query(description="one digit; a number or a sheet; or either, per image"),
        ] = "digit",
    ) -> Any:
        """Classify one image (a photo, a scan or a drawing); answers the record
        `digits.predict output=json` prints (with the same `mode`)."""
        ready_predictor()  # before reading a body that cannot be answered
        name, data = await uploaded_image(request)
        if not data:
            raise HTTPException(400, "empty body: send an image (multipart field or raw body)")
        prediction, seen = await run_in_threadpool(
            classify, name, data, top_k, min_confidence, mode
        )
        record = prediction.record()
        if image and seen is not None:
            png = io.BytesIO()
            to_png(seen).save(png, format="PNG")
            record["image"] = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
        return record

    @app.get("/health")
    def health() -> HealthAnswer:
        """The server process is up (the model may still be loading: see /ready)."""
        return HealthAnswer(status="ok")

    @app.get("/ready", responses={503: ERRORS[503]})
    def ready() -> ReadyAnswer:
        """The model is loaded and has answered a blank image: requests will be answered."""
        ready_predictor()
        return ReadyAnswer(status="ready")

    @app.get("/model", responses={503: ERRORS[503]})
    def model() -> ModelAnswer:
        """What model this server answers with: read from its file, nothing typed twice."""
        ready_predictor()
        return model_answer(served.metadata, source, preprocess)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(PAGE / "index.html")

    app.mount("/page", StaticFiles(directory=PAGE), name="page")
    return app


def model_answer(metadata: dict[str, str], source: str, preprocess: str) -> ModelAnswer:
    """/model's answer from an exported model's metadata (digits.exported.formats.metadata)."""
    accuracy = metadata.get("test_accuracy")
    first_line = (PREPROCESSORS[preprocess].__doc__ or "").strip().splitlines()[0]
    return ModelAnswer(
        name=metadata.get("model", "unknown"),
        file=source,
        checkpoint=metadata.get("checkpoint") or None,
        run=metadata.get("run") or None,
        test_accuracy=float(accuracy) if accuracy else None,
        temperature=float(metadata.get("temperature", 1.0)),
        input=metadata.get("input", ""),
        preprocessing=metadata.get("preprocessing", ""),
        server_preprocess=f"preprocess={preprocess}: {first_line}",
        digits_version=metadata.get("digits_version", ""),
        commit=metadata.get("commit") or None,
    )
