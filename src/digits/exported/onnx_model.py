"""Run an exported .onnx model with onnxruntime: no checkpoint, no Lightning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import torch

from digits.errors import DigitsError
from digits.reading.preprocess import FIELD

INPUT, OUTPUT = "images", "probabilities"  # the names of an exported model's input and output


def is_onnx(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".onnx"


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
        inputs = self.session.get_inputs()
        if [i.name for i in inputs] != [INPUT] or inputs[0].shape[1:] != [1, FIELD, FIELD]:
            raise DigitsError(
                f"ckpt_path={path}: not a digits model (wants input {INPUT} of (N, 1, {FIELD}, "
                f"{FIELD}); export one with `python -m digits.export`)"
            )
        self.metadata: dict[str, str] = self.session.get_modelmeta().custom_metadata_map

    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities (N, 10) for 0-1 images (N, 1, 28, 28), white ink on black."""
        batches = [
            self.session.run(None, {INPUT: chunk.numpy().astype(np.float32)})[0]
            for chunk in images.split(batch_size)
        ]
        return torch.from_numpy(np.concatenate(batches))
