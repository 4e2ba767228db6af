"""Run an exported .onnx model with onnxruntime: no checkpoint, no Lightning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import torch

from digits.errors import DigitsError
from digits.models.networks import NUM_CLASSES
from digits.reading.preprocess import FIELD

INPUT, OUTPUT = "images", "probabilities"  # the names of an exported model's input and output


def is_onnx(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".onnx"


def reads_numbers(path: str | Path) -> bool:
    """Whether an exported file is a number reader's (its metadata says `reads: numbers`); a
    file that is not ONNX at all is left to the model's own load to report. Read by onnxruntime:
    the onnx package takes a second to import, loading a small model a few milliseconds."""
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:  # onnxruntime's errors are untyped; OnnxModel names the problem
        return False
    return session.get_modelmeta().custom_metadata_map.get("reads") == "numbers"


class OnnxModel:
    """An exported digits model on the CPU: 0-1 images (N, 1, 28, 28) in, probabilities out."""

    def __init__(self, path: str | Path, serialized: bytes | None = None) -> None:
        """Load the file at `path`, or the `serialized` model that came from it."""
        path = Path(path)
        if serialized is None and not path.is_file():
            raise DigitsError(f"ckpt_path={path}: no such file")
        try:
            self.session = onnxruntime.InferenceSession(
                serialized or str(path), providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own untyped errors (Fail, InvalidGraph)
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DigitsError(f"ckpt_path={path}: not a readable ONNX model ({reason})") from error
        self.check_signature(path)
        self.metadata: dict[str, str] = self.session.get_modelmeta().custom_metadata_map

    def check_signature(self, path: Path) -> None:
        """A digits model: one float input `images` (N, 1, 28, 28) with N free, one output (N, 10)
        of probabilities; two blank images must give two finite rows of 10 (NaN weights, a fixed
        batch size or a wrong output count would fail every request later)."""
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if self.session.get_modelmeta().custom_metadata_map.get("reads") == "numbers":
            raise DigitsError(
                f"ckpt_path={path}: a number reader's export, which reads whole rows of digits: "
                "use mode=number reader=sequence"
            )
        wanted = (
            f"wants one input {INPUT}, float (N, 1, {FIELD}, {FIELD}) for any N, and one output "
            f"(N, {NUM_CLASSES}); export one with `python -m digits.export`"
        )
        batch = inputs[0].shape[0] if len(inputs) == 1 and inputs[0].shape else None
        if (
            [i.name for i in inputs] != [INPUT]
            or inputs[0].type != "tensor(float)"
            or inputs[0].shape[1:] != [1, FIELD, FIELD]
            or isinstance(batch, int)
            or len(outputs) != 1
            or outputs[0].shape[1:] != [NUM_CLASSES]
        ):
            raise DigitsError(f"ckpt_path={path}: not a digits model ({wanted})")
        try:
            probe = self.probabilities(torch.zeros(2, 1, FIELD, FIELD))
        except Exception as error:  # onnxruntime's own errors, untyped
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DigitsError(
                f"ckpt_path={path}: the model fails on two images ({reason})"
            ) from error
        if probe.shape != (2, NUM_CLASSES) or not bool(probe.isfinite().all()):
            raise DigitsError(
                f"ckpt_path={path}: the model answers {tuple(probe.shape)} with "
                f"{'finite' if bool(probe.isfinite().all()) else 'NaN or infinite'} values for two "
                f"images: damaged, or not a digits model ({wanted})"
            )

    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities (N, 10) for 0-1 images (N, 1, 28, 28), white ink on black."""
        batches = [
            self.session.run(None, {INPUT: chunk.numpy().astype(np.float32)})[0]
            for chunk in images.split(batch_size)
        ]
        return torch.from_numpy(np.concatenate(batches))
