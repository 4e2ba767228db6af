"""A model loaded once (a checkpoint, run by a Lightning Trainer's predict loop; or an exported
.onnx file, run by onnxruntime without importing Lightning) and what it makes of image files: each
image preprocessed the way MNIST was made (digits.reading.preprocess), or every digit of a number
found first (digits.reading.segment)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, Protocol, TypeVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from digits.atomic import save_image
from digits.errors import DigitsError
from digits.exported.onnx_model import OnnxModel, is_onnx
from digits.exported.strip_reader import OnnxStripReader
from digits.inference.prediction import Prediction, none_or_list
from digits.models.crnn import STRIDE
from digits.models.networks import NUM_CLASSES
from digits.reading.images import load_grayscale
from digits.reading.preprocess import FIELD, PREPROCESSORS, BlankImage
from digits.reading.segment import (
    Box,
    Classifier,
    Deadline,
    ReadingTimeout,
    Row,
    TooMuchInk,
    digits_in,
    rows_in,
)
from digits.reading.strips import INK_HEIGHT, MARGIN, STRIP_HEIGHT, batch_of, lay_out

if TYPE_CHECKING:
    import lightning as L

    from digits.models.ctc import Reading

# About half a digit's width in a strip (MNIST's median digit is 0.8 as wide as it is high).
DIGIT_HALF_WIDTH = 0.4 * INK_HEIGHT
Read = TypeVar("Read")  # what a preprocessing makes of an image: one 28x28 digit, or a number's


def preprocessed(
    path: Path, preprocess: Callable[[np.ndarray], Read], stream: BinaryIO | None = None
) -> Read:
    """What `preprocess` makes of an image file (the 28x28 image the network sees, or a number's
    digits), or of an upload's `stream`, named `path`. Raises BlankImage, or DigitsError naming
    the file."""
    if stream is None and not path.is_file():
        if path.is_symlink():
            raise DigitsError(f"{path}: a link to nothing (or a loop of links), not an image file")
        if path.exists():
            raise DigitsError(f"{path}: not a regular file (a device, a pipe or a folder)")
        raise DigitsError(f"{path}: no such file")
    return preprocess(load_grayscale(path, stream))


def read_number(
    path: Path,
    gray: np.ndarray,
    preprocess: str,
    classify: Classifier | None,
    auto: bool = False,
    deadline: Deadline | None = None,
) -> tuple[Prediction, list[torch.Tensor]]:
    """mode=number on one image (grayscale 0-255): its Prediction, holding one per digit found,
    and the digits' 28x28 images, in the same order (`classify` decides where touching digits
    are cut, see digits.reading.segment; preprocess=mnist_v1 leaves the strokes as they are).
    `auto`: an image in which no more than one digit is found is read as mode=digit reads it (a
    Prediction with no `digits`, and its one image). Raises BlankImage, or DigitsError where the
    image holds too much ink or its reading passes the `deadline` (digits.reading.segment)."""
    try:
        found = digits_in(gray, preprocess == "mnist", classify, deadline)
    except (TooMuchInk, ReadingTimeout) as error:
        raise type(error)(f"{path}: {error}") from error
    if auto and len(found) <= 1:
        return Prediction(path), [PREPROCESSORS[preprocess](gray)]
    digits = [Prediction(path, box=d.box, row=d.row) for d in found]
    return Prediction(path, digits=digits), [d.image for d in found]


def to_classify(predictions: list[Prediction]) -> list[Prediction]:
    """What is classified for each prediction, in order: its digits (a number) or itself."""
    return [d for p in predictions for d in (p.digits if p.digits is not None else [p])]


def quiet_trainer() -> L.Trainer:
    """A Trainer for inference that prints and writes nothing (for tools; the CLI uses conf/trainer)."""
    import lightning as L

    return L.Trainer(devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)


class ImageModel(Protocol):
    """What a Predictor runs: 0-1 images (N, 1, 28, 28) in, class probabilities (N, 10) out."""

    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor: ...


class StripReader(Protocol):
    """What a Predictor with reader=sequence runs: 0-1 strips (STRIP_HEIGHT, any width) in,
    each one's reading out."""

    def read(self, strips: list[torch.Tensor], batch_size: int = 256) -> list[Reading]: ...


class StripModel:
    """A number reader (model=crnn) from its checkpoint, or given, run by a Lightning Trainer's
    predict loop."""

    def __init__(
        self, ckpt_path: str | Path | L.LightningModule, trainer: L.Trainer | None = None
    ) -> None:
        from digits.models.checkpoint import load_classifier  # Lightning: only for checkpoints
        from digits.models.number_reader import NumberReader

        self.trainer = trainer or quiet_trainer()
        if isinstance(ckpt_path, NumberReader):
            self.model = ckpt_path
            return
        self.model = load_classifier(ckpt_path)
        if not isinstance(self.model, NumberReader):
            network = type(self.model.net).__name__
            raise DigitsError(
                f"ckpt_path={ckpt_path}: a digit classifier's checkpoint ({network}); "
                "reader=sequence reads rows with a number reader's (python -m digits.train "
                "model=crnn data=numbers), or leave reader=segment to find and classify each digit"
            )

    def read(self, strips: list[torch.Tensor], batch_size: int = 256) -> list[Reading]:
        """Each strip's reading (0-1 strips, STRIP_HEIGHT high, any widths)."""
        if not strips:
            return []
        loader = DataLoader(strips, batch_size=batch_size, collate_fn=batch_of)
        return [r for batch in self.trainer.predict(self.model, dataloaders=loader) for r in batch]


class CheckpointModel:
    """A checkpoint's model (or one given), run by a Lightning Trainer's predict loop."""

    def __init__(
        self, ckpt_path: str | Path | L.LightningModule, trainer: L.Trainer | None = None
    ) -> None:
        from digits.models.checkpoint import load_classifier  # Lightning: only for checkpoints
        from digits.models.number_reader import NumberReader

        given = not isinstance(ckpt_path, str | Path)
        self.model = ckpt_path if given else load_classifier(ckpt_path)
        if isinstance(self.model, NumberReader):
            raise DigitsError(
                f"ckpt_path={ckpt_path}: a number reader's checkpoint ({type(self.model.net).__name__}"
                "), which reads whole rows of digits: use mode=number reader=sequence"
            )
        self.trainer = trainer or quiet_trainer()

    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities (N, 10) for 0-1 images (N, 1, 28, 28), white ink on black."""
        loader = DataLoader(images, batch_size=batch_size)
        return torch.cat(self.trainer.predict(self.model, dataloaders=loader)).float().cpu()


class Predictor:
    """A model loaded once: from a checkpoint (.ckpt) or an exported ONNX file (.onnx), or given.
    `reader`: how mode=number reads a row: segment (find its digits, classify each: a digit
    classifier) or sequence (the whole row at once: a number reader's checkpoint, model=crnn)."""

    def __init__(
        self,
        model: str | Path | ImageModel | StripReader,
        trainer: L.Trainer | None = None,
        reader: str = "segment",
    ) -> None:
        if isinstance(model, str | Path):
            if reader == "sequence":
                model = OnnxStripReader(model) if is_onnx(model) else StripModel(model, trainer)
            else:
                model = OnnxModel(model) if is_onnx(model) else CheckpointModel(model, trainer)
        self.model = model
        self.reader = reader

    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities for (N, 28, 28) images in 0-1, white ink on black."""
        if not len(images):
            return torch.empty(0, NUM_CLASSES)
        return self.model.probabilities(images.unsqueeze(1), batch_size)

    def __call__(
        self,
        files: list[Path],
        preprocess: str,
        top_k: int,
        batch_size: int = 256,
        save_dir: Path | None = None,
        min_confidence: float = 0.0,
        mode: str = "digit",
        read_timeout_s: float | None = None,
    ) -> list[Prediction]:
        """Preprocess and classify every file (mode=number: every digit in it; auto: every digit
        of the files holding several, each file read within `read_timeout_s`); failures are
        recorded on their Prediction."""
        read = []
        for path in files:
            try:
                read.append(self.read(path, preprocess, mode, deadline=Deadline(read_timeout_s)))
            except DigitsError as error:
                read.append((Prediction(path, digits=none_or_list(mode), error=str(error)), []))
        predictions = [prediction for prediction, _ in read]
        ok, stacked = self.answer(read, top_k, batch_size, min_confidence)
        if save_dir is not None:
            taken: set[str] = set()
            for index, (prediction, image) in enumerate(zip(ok, stacked, strict=True)):
                name = prediction.path.stem + (f"-{index:03d}" if mode != "digit" else "")
                if name in taken:  # a/x.png and b/x.png: one file each
                    name = f"{name}-{index:03d}"
                taken.add(name)
                save_image(to_png(image), save_dir / f"{name}.png", "the preprocessed image")
        return predictions

    def read(
        self,
        path: Path,
        preprocess: str,
        mode: str,
        stream: BinaryIO | None = None,
        deadline: Deadline | None = None,
    ) -> tuple[Prediction, list]:
        """An image file (or an upload's `stream`, named `path`): its Prediction (for a number, one
        per digit found) and the 28x28 images to classify, in the same order (reader=sequence: its
        rows laid out as strips, digits.reading.strips, to read with `read_strips`); a blank image
        is a Prediction marked blank. Raises DigitsError naming the file (a number whose reading
        passes the `deadline`: ReadingTimeout)."""
        try:
            if self.reader == "sequence":
                return Prediction(path, digits=[]), laid_out_rows(path, stream, deadline)
            if mode == "digit":
                return Prediction(path), [preprocessed(path, PREPROCESSORS[preprocess], stream)]
            gray = preprocessed(path, np.asarray, stream)
            return read_number(path, gray, preprocess, self.probabilities, mode == "auto", deadline)
        except BlankImage:
            return Prediction(path, digits=none_or_list(mode), blank=True), []

    def answer(
        self,
        read: list[tuple[Prediction, list]],
        top_k: int,
        batch_size: int = 256,
        min_confidence: float = 0.0,
    ) -> tuple[list[Prediction], torch.Tensor]:
        """Fill in the predictions `read` made, all in one model call: the digits found
        classified (returns the predictions classified and their 28x28 images), or with
        reader=sequence the rows read (`read_strips`; returns nothing classified)."""
        if self.reader == "sequence":
            self.read_strips(read, batch_size, min_confidence)
            return [], torch.empty(0, FIELD, FIELD)
        images = [image for _, found in read for image in found]
        stacked = torch.stack(images) if images else torch.empty(0, FIELD, FIELD)
        predictions = to_classify([prediction for prediction, _ in read])
        return self.classify(predictions, stacked, top_k, batch_size, min_confidence), stacked

    def read_strips(
        self,
        read: list[tuple[Prediction, list[LaidOutRow]]],
        batch_size: int = 256,
        min_confidence: float = 0.0,
    ) -> None:
        """reader=sequence: fill in the digits of each Prediction `read` made from its rows, every
        strip read in one call."""
        ok = [(p, rows) for p, rows in read if p.error is None and not p.blank]
        strips = [laid_out.strip for _, rows in ok for laid_out in rows]
        readings = iter(self.model.read(strips, batch_size))
        for prediction, rows in ok:
            read_into(prediction, rows, [next(readings) for _ in rows], min_confidence)

    def warm_up(self) -> None:
        """One real inference on a blank input: the first is slow."""
        if self.reader == "sequence":
            self.model.read([torch.zeros(STRIP_HEIGHT, 8 * STRIDE)])
        else:
            self.probabilities(torch.zeros(1, FIELD, FIELD))

    def classify(
        self,
        predictions: list[Prediction],
        images: torch.Tensor,
        top_k: int,
        batch_size: int = 256,
        min_confidence: float = 0.0,
    ) -> list[Prediction]:
        """Fill in the predictions that have an image (not blank, no error) from `images`, one per
        such prediction, in order; returns those predictions. Below `min_confidence` a prediction
        is unsure: no digit, and at least the top two classes."""
        ok = [p for p in predictions if p.error is None and not p.blank]
        for prediction, probs in zip(ok, self.probabilities(images, batch_size), strict=True):
            values, digits = probs.topk(max(top_k, 2))
            top = [(int(d), float(v)) for d, v in zip(digits, values, strict=True)]
            prediction.confidence = top[0][1]
            prediction.unsure = prediction.confidence < min_confidence
            prediction.digit = None if prediction.unsure else top[0][0]
            prediction.top = top if prediction.unsure else top[:top_k]
        return ok


def to_png(image: torch.Tensor) -> Image.Image:
    """A 28x28 0-1 image as the 8-bit grayscale picture the network saw."""
    return Image.fromarray((image * 255).round().byte().numpy())


class LaidOutRow(NamedTuple):
    """A row found in an image (its box there) and the strip it is read from."""

    row: Row
    strip: torch.Tensor


def laid_out_rows(
    path: Path, stream: BinaryIO | None = None, deadline: Deadline | None = None
) -> list[LaidOutRow]:
    """mode=number reader=sequence: the rows of an image file (or an upload's `stream`, named
    `path`) found (digits.reading.segment.rows_in) and laid out as strips. Raises BlankImage, or
    DigitsError naming the file (too much ink: TooMuchInk; past the `deadline`: ReadingTimeout;
    a row too wide: StripTooWide)."""
    gray = preprocessed(path, np.asarray, stream)
    try:
        return [LaidOutRow(row, lay_out(row.ink)) for row in rows_in(gray, deadline)]
    except DigitsError as error:
        raise type(error)(f"{path}: {error}") from error


def read_into(prediction: Prediction, rows: list[LaidOutRow], readings: list[Reading],
              min_confidence: float) -> None:  # fmt: skip
    """A number's digits from its rows' readings: each with its confidence (below
    `min_confidence`: unsure, no digit) and a box around the frame it was read at."""
    for index, (row, reading) in enumerate(zip(rows, readings, strict=True)):
        for digit, confidence, frame in zip(*reading, strict=True):
            unsure = confidence < min_confidence
            prediction.digits.append(
                Prediction(
                    prediction.path,
                    digit=None if unsure else digit,
                    confidence=confidence,
                    top=[(digit, confidence)],
                    unsure=unsure,
                    box=frame_box(row.row.box, row.strip.shape[-1], frame),
                    row=index,
                )
            )


def frame_box(row: Box, width: int, frame: int) -> Box:
    """Where in the image a digit read at `frame` of a strip `width` pixels wide (laid out from
    the row's box) is: the row's height, about a digit's width around the frame's centre."""
    scale = (row.right - row.left) / max(width - 2 * MARGIN, 1)  # image pixels per strip pixel
    centre = row.left + ((frame + 0.5) * STRIDE - MARGIN) * scale
    half = DIGIT_HALF_WIDTH * scale
    left = max(row.left, round(centre - half))
    return Box(row.top, left, row.bottom, min(row.right, max(left + 1, round(centre + half))))
