"""What `digits.serve` answers, as pydantic models: FastAPI checks every answer against them and
describes them in `/openapi.json` and `/docs`. The prediction records are those of
`digits.inference.prediction.Prediction.record()` (what `digits.predict output=json` prints); keys
a record leaves out (`blank`, `unsure`, `error`, `image`) stay out of the answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field


class ErrorAnswer(BaseModel):
    """Every refusal (4xx) and "not ready" (503): one line saying what was wrong."""

    error: str = Field(examples=["not an image (cannot identify image file)"])


class TopClass(BaseModel):
    digit: int = Field(ge=0, le=9)
    probability: float = Field(ge=0, le=1)


class DigitAnswer(BaseModel):
    """One digit (mode=digit, or mode=auto where one digit is found)."""

    file: str
    digit: int | None = Field(description="null where blank or unsure")
    confidence: float | None
    top: list[TopClass]
    blank: bool | None = Field(None, description="present (true) when the image holds no ink")
    unsure: bool | None = Field(None, description="present (true) below min_confidence")
    error: str | None = None
    image: str | None = Field(None, description="?image=true: the 28x28 image seen, a PNG data URL")


class Box(BaseModel):
    """A digit's box in the image's pixels (bottom and right exclusive)."""

    top: int
    left: int
    bottom: int
    right: int


class NumberDigit(BaseModel):
    box: Box | None
    row: int = Field(description="0 for the first line")
    digit: int | None
    confidence: float | None
    top: list[TopClass]
    unsure: bool | None = None


class NumberAnswer(BaseModel):
    """Every digit of a number or a sheet (mode=number, or mode=auto where several are found)."""

    file: str
    text: str = Field(description='the digits read, "?" where unsure, one line per row')
    digits: list[NumberDigit]
    blank: bool | None = None
    error: str | None = None


class ItemError(BaseModel):
    """An image of a batch that has no record: the status and error /predict would answer."""

    file: str
    status: int = Field(ge=400, le=499, examples=[400])
    error: str = Field(examples=["photo.txt: not an image (cannot identify image file)"])


class BatchAnswer(BaseModel):
    """/predict/batch: one result per image sent, in the order sent."""

    results: list[DigitAnswer | NumberAnswer | ItemError]


class HealthAnswer(BaseModel):
    status: str = Field(examples=["ok"])


class ReadyAnswer(BaseModel):
    status: str = Field(examples=["ready"])


class ModelAnswer(BaseModel):
    """The model being served, from its checkpoint or its ONNX file's metadata."""

    name: str = Field(description="the network's class, e.g. LeNet")
    reads: Literal["digits", "numbers"] = Field(
        description="digits: a digit classifier (mode=digit, number or auto; a number's digits "
        "found, then each classified); numbers: a number reader (model=crnn: mode=number only, "
        "each row read whole)"
    )
    file: str = Field(description="the file the server was started with")
    checkpoint: str | None = Field(description="the checkpoint it was made from")
    run: str | None = Field(description="the run that trained it")
    parent: str | None = Field(
        description="the checkpoint its training started from (init_from=), if any"
    )
    test_accuracy: float | None = Field(
        description="that checkpoint's accuracy on MNIST's test set (a number reader: whole "
        "numbers right, on strips made of MNIST's test digits)"
    )
    temperature: float = Field(
        description="calibration temperature, already in its output (a number reader: 1)"
    )
    input: str = Field(description="the input the network takes (the contract)")
    preprocessing: str = Field(description="how the network's input is made")
    server_preprocess: str = Field(description="what this server does to an uploaded image")
    digits_version: str = Field(description="the digits that exported it")
    commit: str | None = Field(
        description="the commit of the code that trained it (-dirty: changed)"
    )


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A refusal as `{"error": message}`, with the refusal's own headers (Allow on a 405)."""
    return JSONResponse(ErrorAnswer(error=message).model_dump(), status, headers=headers)


ERRORS = {status: {"model": ErrorAnswer} for status in (400, 408, 413, 422, 503)}
