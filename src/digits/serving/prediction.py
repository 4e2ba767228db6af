"""The prediction routes: `POST /predict` (an image in, the prediction record out, as
`digits.predict output=json` prints it) and `POST /predict/batch` (several images in, a list of
records or errors out, in order). Their bodies are limited in size and time (digits.serving.limits)
and each image's reading in ink, time and decoded pixels; every refusal is a 4xx (503 before the
model is ready) with a one-line JSON body."""

from __future__ import annotations

import asyncio
import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from digits.errors import DigitsError
from digits.inference.prediction import CONFIDENCE, MODES, TOP_K, Prediction
from digits.inference.predictor import Predictor, to_png
from digits.reading.images import ImageTooLarge, pixel_count
from digits.reading.segment import Deadline, ReadingTimeout, TooMuchInk
from digits.reading.strips import StripTooWide
from digits.serving.limits import DecodingBudget, too_large
from digits.serving.options import ServeOptions
from digits.serving.responses import ERRORS, BatchAnswer, DigitAnswer, NumberAnswer
from digits.serving.served_model import ServedModel
from digits.serving.status import ready_predictor

UPLOAD = "upload"  # the file name of a raw-body upload, in the record's "file"
IMAGE_FILE = {"type": "string", "format": "binary"}


def upload_body(field: str, schema: dict[str, Any], raw_image: bool) -> dict[str, Any]:
    """For /docs: the endpoints read their bodies themselves, so FastAPI cannot describe them: a
    form whose `field` is required, and (`raw_image`) one image as the raw body."""
    form = {"type": "object", "properties": {field: schema}, "required": [field]}
    content: dict[str, Any] = {"multipart/form-data": {"schema": form}}
    if raw_image:
        content["image/*"] = {"schema": IMAGE_FILE}
    return {"requestBody": {"required": True, "content": content}}


PREDICT_BODY = upload_body("image", IMAGE_FILE, raw_image=True)
BATCH_BODY = upload_body(
    "images", {"type": "array", "items": IMAGE_FILE, "minItems": 1}, raw_image=False
)


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


def prediction_routes(served: ServedModel, options: ServeOptions) -> APIRouter:
    """/predict and /predict/batch, answering with the model `served` as `options` say. Each
    route's `max_body_size` is its body limit (FastAPI's; DeclaredSizeLimit reads it too)."""
    router = APIRouter()
    budget = DecodingBudget()

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
            Literal[MODES] | None,
            Query(
                description="one digit; a number or a sheet; or either, per image (default: "
                "digit, or number where the model is a number reader: GET /model's `reads`)"
            ),
        ] = None,
    ) -> Asked:
        if mode is None:
            mode = "number" if served.reads_numbers else "digit"
        if mode != "number" and served.reads_numbers:
            raise HTTPException(
                422, f"mode={mode}: this server's model is a number reader, which reads rows of "
                "digits whole: use mode=number"
            )  # fmt: skip
        if mode != "digit" and options.preprocess == "naive":
            raise HTTPException(
                422, f"mode={mode} needs preprocess=mnist or mnist_v1 (the server's is naive)"
            )
        return Asked(top_k, min_confidence, mode, image)

    def answers(uploads: list[Upload], asked: Asked) -> list[Answer]:
        """Each upload's record (its digits classified together, in one batch; a number reader:
        its rows read together), or its refusal."""
        predictor = ready_predictor(served)
        deadline = Deadline(options.read_timeout_s, served.stopping)  # for the whole request
        read = [
            read_upload(predictor, upload, asked.mode, options, deadline, budget)
            for upload in uploads
        ]
        found = [item for item in read if not isinstance(item, HTTPException)]
        predictor.answer(found, asked.top_k, min_confidence=asked.min_confidence)
        return [item if isinstance(item, HTTPException) else record(*item, asked) for item in read]

    async def answered(uploads: list[Upload], asked: Asked) -> list[Answer]:
        """`answers`, in a worker thread; a request still running when the server stops (after
        its grace period) is answered 503, not cut off."""
        try:
            return await run_in_threadpool(answers, uploads, asked)
        except asyncio.CancelledError:
            raise HTTPException(503, "the server is shutting down: try again later") from None

    @router.post(
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
        ready_predictor(served)  # before reading a body that cannot be answered
        uploads = await uploads_of(
            request, 1, "more than 1 image: send one (or use /predict/batch)"
        )
        (answer,) = await answered(uploads, asked)
        if isinstance(answer, HTTPException):
            raise answer
        return answer

    @router.post(
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
        ready_predictor(served)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise HTTPException(400, "send the images as the files of a multipart/form-data form")
        too_many = (f"more than {options.max_batch_images} images in one request "
                    "(max_batch_images); send them in several")  # fmt: skip
        uploads = await uploads_of(request, options.max_batch_images, too_many)
        results = await answered(uploads, asked)
        items = zip(uploads, results, strict=True)
        return {"results": [batch_item(upload, result) for upload, result in items]}

    return router


def read_upload(
    predictor: Predictor,
    upload: Upload,
    mode: str,
    options: ServeOptions,
    deadline: Deadline,
    budget: DecodingBudget,
) -> tuple[Prediction, list] | HTTPException:
    """An upload's Prediction and the 28x28 images to classify for it (a number reader: its rows,
    laid out), or its refusal (too much ink: 422; its reading, or its wait for the server's
    `budget` of decoded pixels, past the request's `deadline`: 503; a row too wide to read: 422;
    anything else the user sent that cannot be read: 400)."""
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
    except (TooMuchInk, StripTooWide) as error:  # an image, but not one a number is read from
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
