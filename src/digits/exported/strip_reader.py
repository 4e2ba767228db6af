"""A number reader (model=crnn) as an ONNX file, and that file run by onnxruntime.

The file takes strips as float32 (N, 1, 32, W) in 0-1, white ink on black, laid out by
digits.reading.strips, any N and any W, and gives each frame's posteriors (N, W // 4, 11): digits
0-9 and CTC's blank, last. The normalisation and the softmax are inside; decoding (greedy or beam,
as the checkpoint says, recorded in the metadata) is done by the reader that runs it. One call
reads strips of one width (a strip alone reads as in training: no other strip's padding)."""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import onnxruntime
import torch
from torch import nn

from digits.errors import DigitsError
from digits.models.crnn import BLANK, STRIDE
from digits.models.ctc import MAX_BEAM, Reading, decode
from digits.reading.strips import MAX_STRIP_WIDTH, STRIP_HEIGHT

if TYPE_CHECKING:  # reading an export needs no Lightning, nor the onnx package (a second)
    import onnx

    from digits.models.number_reader import NumberReader

STRIPS, POSTERIORS = "strips", "posteriors"  # the file's input and output
PREPROCESSING = (
    f"float32 strips (N, 1, {STRIP_HEIGHT}, W) in 0-1, white ink on black: a row's ink box "
    f"scaled to 24 px high in {STRIP_HEIGHT}, 4 px of black each side "
    "(digits.reading.strips.lay_out); the model normalises them itself"
)


class FramePosteriors(nn.Module):
    """What the exported file computes: the reader's log-probabilities, exponentiated."""

    def __init__(self, reader: NumberReader) -> None:
        super().__init__()
        self.reader = reader

    def forward(self, strips: torch.Tensor) -> torch.Tensor:
        return self.reader(strips).exp()


def strip_reader_info(reader: NumberReader) -> dict[str, str]:
    """What the file says about the reader, beside where it came from (formats.metadata)."""
    return {
        "reads": "numbers",
        "decoding": reader.hparams.decoding,
        "beam_width": str(reader.hparams.beam_width),
        "preprocessing": PREPROCESSING,
        "input": f"{STRIPS}: float32 (N, 1, {STRIP_HEIGHT}, W)",
        "output": f"{POSTERIORS}: float32 (N, W // {STRIDE}, {BLANK + 1}), blank last",
    }


def strip_reader_proto(reader: NumberReader, info: dict[str, str]) -> onnx.ModelProto:
    """Export with dynamic batch and width; checked with onnx.checker. torch's TorchScript-based
    exporter: the dynamo exporter cannot decompose the GRU with a dynamic width (torch 2.14:
    a size mismatch in its decomposition)."""
    import onnx  # exporting only: reading a file needs onnxruntime alone

    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        torch.onnx.export(
            FramePosteriors(reader).eval(),
            (torch.rand(2, 1, STRIP_HEIGHT, 64),),
            buffer,
            input_names=[STRIPS],
            output_names=[POSTERIORS],
            dynamic_axes={STRIPS: {0: "batch", 3: "width"}, POSTERIORS: {0: "batch", 1: "frames"}},
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    proto.doc_string = f"digits {info['model']}: {info['preprocessing']}"
    for key, value in info.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    return proto


class OnnxStripReader:
    """An exported number reader on the CPU: strips in, readings out (decoded as its metadata
    says)."""

    def __init__(self, path: str | Path, serialized: bytes | None = None) -> None:
        path = Path(path)
        try:
            self.session = onnxruntime.InferenceSession(
                serialized or str(path), providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own untyped errors
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DigitsError(f"ckpt_path={path}: not a readable ONNX model ({reason})") from error
        self.metadata: dict[str, str] = self.session.get_modelmeta().custom_metadata_map
        inputs = self.session.get_inputs()
        if self.metadata.get("reads") != "numbers" or [i.name for i in inputs] != [STRIPS]:
            raise DigitsError(
                f"ckpt_path={path}: not a number reader's export (one input {STRIPS}, float "
                f"(N, 1, {STRIP_HEIGHT}, W)); reader=sequence reads one written by `python -m "
                "digits.export` from a model=crnn run, or a digit classifier's with reader=segment"
            )
        self.decoding = self.metadata.get("decoding")
        beam_width = self.metadata.get("beam_width", "")
        if self.decoding not in ("greedy", "beam") or not (
            beam_width.isdigit() and 1 <= int(beam_width) <= MAX_BEAM
        ):
            raise DigitsError(
                f"ckpt_path={path}: its metadata asks for decoding={self.decoding} with "
                f"beam_width={beam_width}; a number reader's export says greedy or beam, and a "
                f"beam of 1 to {MAX_BEAM}"
            )
        self.beam_width = int(beam_width)

    def read(self, strips: list[torch.Tensor], batch_size: int = 256) -> list[Reading]:
        """Each strip's reading; strips of the same width are run together, each as if alone."""
        readings: dict[int, Reading] = {}
        by_width: dict[int, list[int]] = {}
        for index, strip in enumerate(strips):
            if strip.shape[-1] > MAX_STRIP_WIDTH:
                raise DigitsError(f"a strip {strip.shape[-1]} px wide: over {MAX_STRIP_WIDTH}")
            by_width.setdefault(strip.shape[-1], []).append(index)
        for width, indices in by_width.items():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                batch = torch.stack([strips[i] for i in chunk])[:, None].numpy()
                scores = torch.from_numpy(self.session.run(None, {STRIPS: batch})[0])
                frames = torch.full((len(chunk),), width // STRIDE)
                found = decode(scores, frames, self.decoding, self.beam_width)
                readings.update(zip(chunk, found, strict=True))
        return [readings[index] for index in range(len(strips))]
