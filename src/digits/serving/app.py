"""The FastAPI app: `GET /` (the page), `POST /predict` (an image in, the prediction record out, as
`digits.predict output=json` prints it), `POST /predict/batch` (several images in, a list of records
or errors out, in order), `GET /health` (the process is up), `GET /ready` (the model is loaded and
has answered), `GET /model` (what model this is), and FastAPI's `/docs`.

No route takes a file path; request bodies are limited in size and time (digits.serving.limits);
every answer and refusal has its schema in `/openapi.json` (digits.serving.responses), a refusal
being a 4xx (503 before the model is ready) with a one-line JSON body `{"error": "..."}`."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import ClientDisconnect

import digits
from digits.config.schema import CONFIDENCE, TOP_K
from digits.errors import DigitsError
from digits.exported.onnx_model import OnnxModel
from digits.inference.prediction import MODES, Prediction
from digits.inference.predictor import Predictor, to_classify, to_png
from digits.reading.images import ImageTooLarge, pixel_count
from digits.reading.preprocess import FIELD, PREPROCESSORS
from digits.reading.segment import Deadline, ReadingTimeout, TooMuchInk
from digits.serving.batching import BatchingModel, Model
from digits.serving.limits import (
    BodyTimeout,
    DeclaredSizeLimit,
    DecodingBudget,
    JSONCORSMiddleware,
    too_large,
)
from digits.serving.loading import ServedModel
from digits.serving.metrics import CountedModel, RequestMetrics, ServerMetrics
from digits.serving.responses import (
    ERRORS,
    BatchAnswer,
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
IMAGE_FILE = {"type": "string", "format": "binary"}
# For /docs: the endpoints read their bodies themselves, so FastAPI cannot describe them.
PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"image": IMAGE_FILE},
                    "required": ["image"],
                }
            },
            "image/*": {"schema": IMAGE_FILE},
        },
    }
}
BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"images": {"type": "array", "items": IMAGE_FILE, "minItems": 1}},
                    "required": ["images"],
                }
            }
        },
    }
}


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


@dataclass(frozen=True)
class Asked:
    """What a prediction request asks for, from its query string."""

    top_k: int
    min_confidence: float
    mode: str
    image: bool


Upload = tuple[str, bytes]  # an uploaded image's file name and bytes
Answer = dict[str, Any] | HTTPException  # an image's record, or why it has none


async def uploads_of(request: Request, max_files: int, too_many: str) -> list[Upload]:
    """The images a request sends: a form's files, in order (more than `max_files`: 413 saying
    `too_many`), or the raw body as one image."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        return [(UPLOAD, await request.body())]
    try:
        form = await request.form(max_files=max_files, max_fields=max_files + 10)
    except StarletteHTTPException as error:
        # Starlette stops at the file past `max_files` with its own words: name the setting.
        if str(error.detail).startswith("Too many files"):
            raise HTTPException(413, too_many) from error
        raise
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if not files:
        raise HTTPException(400, "the form holds no file: send the image as a file field")
    return [(Path(file.filename or UPLOAD).name, await file.read()) for file in files]


def create_app(load: Callable[[], OnnxModel], source: str, options: ServeOptions,
               on_load_failure: Callable[[], None] | None = None) -> FastAPI:  # fmt: skip
    """The app around the model `load` returns (loaded in the background once the app starts;
    `source`: the file it comes from), answering as `options` say: concurrent requests' images
    classified together (digits.serving.batching) unless options.batch_images is 1."""

    def load_batched() -> Model:
        model = CountedModel(load(), metrics)
        if options.batch_images <= 1:
            return model
        return BatchingModel(model, options.batch_images, options.batch_wait_s)

    served = ServedModel(load_batched, on_load_failure)
    metrics = ServerMetrics(served)
    budget = DecodingBudget()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        served.start()
        yield
        served.close()

    app = FastAPI(
        title="digits",
        version=digits.__version__,
        description="Handwritten digit recognition (the model: GET /model).",
        lifespan=lifespan,
    )
    app.state.served = served
    app.add_middleware(BodyTimeout, seconds=options.body_timeout_s)
    app.add_middleware(DeclaredSizeLimit, routes_of=app)
    if options.cors_origins:
        app.add_middleware(
            JSONCORSMiddleware,
            allow_origins=list(options.cors_origins),
            allow_methods=["GET", "POST"],
        )
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: sees every answer
    handle_errors(app)

    def ready_predictor() -> Predictor:
        if served.predictor is None:
            raise HTTPException(503, served.not_ready)
        return served.predictor

    def asked_for(
        top_k: Annotated[int, Query(ge=TOP_K.ge, le=TOP_K.le)] = options.top_k,
        image: Annotated[bool, Query(description="add the 28x28 image the network saw")] = False,
        min_confidence: Annotated[
            float,
            Query(
                ge=CONFIDENCE.ge,
                le=CONFIDENCE.le,
                allow_inf_nan=False,
                description="below it: unsure, no digit, the top two",
            ),
        ] = options.min_confidence,
        mode: Annotated[
            Literal[MODES],
            Query(description="one digit; a number or a sheet; or either, per image"),
        ] = "digit",
    ) -> Asked:
        if mode != "digit" and options.preprocess == "naive":
            raise HTTPException(
                422, f"mode={mode} needs preprocess=mnist or mnist_v1 (the server's is naive)"
            )
        return Asked(top_k, min_confidence, mode, image)

    def answers(uploads: list[Upload], asked: Asked) -> list[Answer]:
        """Each upload's record (its digits classified together, in one batch), or its refusal."""
        predictor = ready_predictor()
        deadline = Deadline(options.read_timeout_s, served.stopping)  # for the whole request
        read = [
            read_upload(predictor, upload, asked.mode, options, deadline, budget)
            for upload in uploads
        ]
        found = [item for item in read if not isinstance(item, HTTPException)]
        images = [image for _, item_images in found for image in item_images]
        stacked = torch.stack(images) if images else torch.empty(0, FIELD, FIELD)
        predictions = [prediction for prediction, _ in found]
        predictor.classify(
            to_classify(predictions), stacked, asked.top_k, min_confidence=asked.min_confidence
        )
        return [item if isinstance(item, HTTPException) else record(*item, asked) for item in read]

    async def answered(uploads: list[Upload], asked: Asked) -> list[Answer]:
        """`answers`, in a worker thread; a request still running when the server stops (after
        its grace period) is answered 503, not cut off."""
        try:
            return await run_in_threadpool(answers, uploads, asked)
        except asyncio.CancelledError:
            raise HTTPException(503, "the server is shutting down: try again later") from None

    @app.post(
        "/predict",
        openapi_extra=PREDICT_BODY,
        response_model=DigitAnswer | NumberAnswer,
        response_model_exclude_unset=True,
        responses=ERRORS,
        max_body_size=options.max_upload_bytes,
    )
    async def predict(request: Request, asked: Asked = Depends(asked_for)) -> Any:
        """Classify one image (a photo, a scan or a drawing); answers the record
        `digits.predict output=json` prints (with the same `mode`)."""
        ready_predictor()  # before reading a body that cannot be answered
        uploads = await uploads_of(
            request, 1, "more than 1 image: send one (or use /predict/batch)"
        )
        (answer,) = await answered(uploads, asked)
        if isinstance(answer, HTTPException):
            raise answer
        return answer

    @app.post(
        "/predict/batch",
        openapi_extra=BATCH_BODY,
        response_model=BatchAnswer,
        response_model_exclude_unset=True,
        responses=ERRORS,
        max_body_size=options.max_upload_bytes * options.max_batch_images,
    )
    async def predict_batch(request: Request, asked: Asked = Depends(asked_for)) -> Any:
        """Classify several images sent as the files of one form (up to max_batch_images): one
        result per file, in order, each the record /predict answers or the error it would give."""
        ready_predictor()
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise HTTPException(400, "send the images as the files of a multipart/form-data form")
        too_many = (f"more than {options.max_batch_images} images in one request "
                    "(max_batch_images); send them in several")  # fmt: skip
        uploads = await uploads_of(request, options.max_batch_images, too_many)
        results = await answered(uploads, asked)
        items = zip(uploads, results, strict=True)
        return {"results": [batch_item(upload, result) for upload, result in items]}

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
        return model_answer(served.metadata, source, options.preprocess)

    @app.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
    def metrics_page() -> PlainTextResponse:
        """Prometheus' text format: requests by route and status, latency, images per model
        call (batching), model load time, readiness."""
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(PAGE / "index.html")

    app.mount("/page", StaticFiles(directory=PAGE), name="page")
    return app


def handle_errors(app: FastAPI) -> None:
    """Every refusal answered as `{"error": "..."}`, one line naming what was wrong."""

    # A client that goes away mid-upload is no error of the server's: one line in its log.
    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, error: ClientDisconnect) -> Response:
        log.info(
            "%s %s: the client went away before its upload ended", request.method, request.url.path
        )
        return Response(status_code=400)

    # Starlette's own refusals (404, a form over its limits, a body over FastAPI's limit) raise
    # its HTTPException, FastAPI's base.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = str(error.detail)
        if error.status_code == 413 and message == "Content Too Large":  # FastAPI's body limit
            message = too_large(request.scope[MAX_BODY_SIZE_SCOPE_KEY])
        return error_response(error.status_code, message, error.headers)

    # A fault of ours: logged with its traceback, answered in the same JSON shape as a refusal.
    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path, exc_info=error)
        return error_response(500, "internal error (logged by the server)")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        return error_response(422, f"{where}: {problem['msg']}")


def read_upload(
    predictor: Predictor,
    upload: Upload,
    mode: str,
    options: ServeOptions,
    deadline: Deadline,
    budget: DecodingBudget,
) -> tuple[Prediction, list[torch.Tensor]] | HTTPException:
    """An upload's Prediction and the 28x28 images to classify for it, or its refusal (too much
    ink: 422; its reading, or its wait for the server's `budget` of decoded pixels, past the
    request's `deadline`: 503)."""
    name, data = upload
    if not data:
        return HTTPException(400, f"{name}: empty; send an image (a file field or a raw body)")
    if len(data) > options.max_upload_bytes:  # one image of a batch: the body's limit per image
        return HTTPException(413, too_large(options.max_upload_bytes, f"{name}: image"))
    stream = io.BytesIO(data)
    try:
        with budget.held(pixel_count(stream), deadline):
            return predictor.read(Path(name), options.preprocess, mode, stream, deadline)
    except ImageTooLarge as error:
        return HTTPException(413, str(error))
    except TooMuchInk as error:
        return HTTPException(422, str(error))
    except ReadingTimeout as error:
        return HTTPException(503, str(error))
    except DigitsError as error:
        return HTTPException(400, str(error))


def record(prediction: Prediction, images: list[torch.Tensor], asked: Asked) -> dict[str, Any]:
    """The answer for one image: its prediction's record, with the 28x28 image the network saw
    when asked (mode=digit)."""
    answer = prediction.record()
    if asked.image and prediction.digits is None and images:
        png = io.BytesIO()
        to_png(images[0]).save(png, format="PNG")
        answer["image"] = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    return answer


def batch_item(upload: Upload, answer: Answer) -> dict[str, Any]:
    """One result of /predict/batch: the record, or the file's name, status and error."""
    if isinstance(answer, HTTPException):
        return {"file": upload[0], "status": answer.status_code, "error": answer.detail}
    return answer


def model_answer(metadata: dict[str, str], source: str, preprocess: str) -> ModelAnswer:
    """/model's answer from an exported model's metadata (digits.exported.formats.metadata)."""
    accuracy = metadata.get("test_accuracy")
    first_sentence = " ".join((PREPROCESSORS[preprocess].__doc__ or "").split()).split(". ")[0]
    return ModelAnswer(
        name=metadata.get("model", "unknown"),
        file=source,
        checkpoint=metadata.get("checkpoint") or None,
        run=metadata.get("run") or None,
        test_accuracy=float(accuracy) if accuracy else None,
        temperature=float(metadata.get("temperature", 1.0)),
        input=metadata.get("input", ""),
        preprocessing=metadata.get("preprocessing", ""),
        server_preprocess=f"preprocess={preprocess}: {first_sentence.rstrip('.')}.",
        digits_version=metadata.get("digits_version", ""),
        commit=metadata.get("commit") or None,
    )
