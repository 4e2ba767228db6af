"""The FastAPI app of `digits.serve`: the routes (routers of digits.serving.status, .prediction
and .page_routes), the limits and metrics around them, and one JSON shape for every refusal
(`{"error": "..."}`, one line). No route takes a file path; every answer and refusal has its schema
in `/openapi.json` (digits.serving.responses)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import ClientDisconnect

import digits
from digits.exported.onnx_model import OnnxModel
from digits.exported.strip_reader import OnnxStripReader
from digits.serving.batching import BatchingModel, Model
from digits.serving.limits import BodyTimeout, DeclaredSizeLimit, JSONCORSMiddleware, too_large
from digits.serving.metrics import CountedModel, RequestMetrics, ServerMetrics
from digits.serving.options import ServeOptions
from digits.serving.page_routes import page_routes
from digits.serving.prediction import prediction_routes
from digits.serving.responses import error_response
from digits.serving.served_model import ServedModel, reader_of
from digits.serving.status import status_routes

log = logging.getLogger(__name__)


def create_app(load: Callable[[], OnnxModel | OnnxStripReader], source: str,
               options: ServeOptions,
               on_load_failure: Callable[[], None] | None = None) -> FastAPI:  # fmt: skip
    """The app around the model `load` returns (loaded in the background once the app starts;
    `source`: the file it comes from), answering as `options` say: concurrent requests' images
    classified together (digits.serving.batching) unless options.batch_images is 1. A number
    reader's strips are read per request, all of a request's rows in one call (strips of
    different widths do not share a batch: digits.exported.strip_reader)."""

    def load_batched() -> Model | OnnxStripReader:
        loaded = load()
        if reader_of(loaded.metadata) == "sequence":
            return loaded
        model = CountedModel(loaded, metrics)
        if options.batch_images <= 1:
            return model
        return BatchingModel(model, options.batch_images, options.batch_wait_s)

    served = ServedModel(load_batched, on_load_failure)
    metrics = ServerMetrics(served)

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
    prediction = prediction_routes(served, options)
    app.add_middleware(BodyTimeout, seconds=options.body_timeout_s)
    app.add_middleware(DeclaredSizeLimit, routes=prediction.routes)
    if options.cors_origins:
        app.add_middleware(
            JSONCORSMiddleware,
            allow_origins=list(options.cors_origins),
            allow_methods=["GET", "POST"],
        )
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: sees every answer
    handle_errors(app)

    app.include_router(prediction)
    app.include_router(status_routes(served, metrics, source, options.preprocess))
    app.include_router(page_routes())
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
