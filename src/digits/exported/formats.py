"""Write a trained model as one file: ONNX (onnxruntime, any language) or TorchScript (torch only).

Both take images as float32 (N, 1, 28, 28) in 0-1, white ink on black, any batch size, and give class
probabilities (N, 10): the normalisation and the softmax are inside. The file also records where it
came from and what preprocessing it expects (`metadata`)."""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

import digits
from digits.atomic import write_atomically
from digits.errors import DigitsError
from digits.exported.onnx_model import INPUT, OUTPUT, OnnxModel
from digits.exported.strip_reader import OnnxStripReader, strip_reader_info, strip_reader_proto
from digits.models.base import DigitsModule
from digits.models.calibration import calibrated
from digits.models.checkpoint import model_from, read_checkpoint
from digits.models.classifier import DigitClassifier
from digits.models.networks import NUM_CLASSES, reads_numbers
from digits.models.number_reader import NumberReader
from digits.reading.preprocess import FIELD
from digits.runs import RunDir

PREPROCESSING = (
    f"float32 images (N, 1, {FIELD}, {FIELD}) in 0-1, white ink on black, made like MNIST: the "
    "digit's box fitted into 20x20 pixels and centred by its centre of mass "
    "(digits.reading.preprocess.mnist_like); the model normalises them itself"
)


class Probabilities(nn.Module):
    """A classifier's logits (the classifier itself, or its TorchScript trace) with its calibrated
    softmax on top: what an exported file computes."""

    def __init__(self, logits: nn.Module, temperature: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.register_buffer("temperature", temperature.detach().clone())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return calibrated(self.logits(images), self.temperature)


def metadata(classifier: DigitsModule, ckpt_path: Path) -> dict[str, str]:
    """What an exported file says about itself (ONNX metadata_props hold strings only): a digit
    classifier's, or a number reader's (strip_reader_info)."""
    run = RunDir.of_checkpoint(ckpt_path)
    accuracy = run.test_accuracy(ckpt_path) if run is not None else None
    net = classifier.hparams.net
    info = {
        "digits_version": digits.__version__,
        "model": net["_target_"].rsplit(".", 1)[-1],
        "network": json.dumps(net),
        "checkpoint": str(ckpt_path.resolve()),
        "run": str(run.path.resolve()) if run is not None else "",
        "parent": (classifier.parent or {}).get("checkpoint", ""),  # init_from=: its lineage
        "test_accuracy": "" if accuracy is None else f"{accuracy:.4f}",
        "temperature": f"{getattr(classifier, 'temperature', torch.ones(())).item():.6g}",
        "commit": _commit(run),
        "preprocessing": PREPROCESSING,
        "input": f"{INPUT}: float32 (N, 1, {FIELD}, {FIELD})",
        "output": f"{OUTPUT}: float32 (N, {NUM_CLASSES})",
    }
    if isinstance(classifier, NumberReader):  # no temperature: its posteriors are CTC's own
        del info["temperature"]
        info |= strip_reader_info(classifier)
    return info


def _commit(run: RunDir | None) -> str:
    """The commit of the code that trained the run, "-dirty" where it had changes ("" unknown)."""
    code = run.manifest().get("code", {}) if run is not None else {}
    commit = code.get("commit") or ""
    return f"{commit}-dirty" if commit and code.get("dirty") else commit


def example_batch() -> torch.Tensor:
    return torch.rand(2, 1, FIELD, FIELD)


def onnx_proto(classifier: DigitsModule, info: dict[str, str]) -> onnx.ModelProto:
    """Export with torch's current (dynamo) exporter, batch size dynamic; checked with onnx.checker.
    A number reader: digits.exported.strip_reader's export (width dynamic too)."""
    if isinstance(classifier, NumberReader):
        return strip_reader_proto(classifier, info)
    model = Probabilities(classifier, classifier.temperature).eval()
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The exporter reports each stage on the console; keep the entry point's output to its own.
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(
            model,
            (example_batch(),),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes={"images": {0: batch}},
            dynamo=True,
            verbose=False,
        )
    proto = program.model_proto
    proto.doc_string = f"digits {info['model']}: {info['preprocessing']}"
    for key, value in info.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def to_onnx(classifier: DigitsModule, path: Path, info: dict[str, str]) -> None:
    write_atomically(path, onnx_proto(classifier, info).SerializeToString(), "the exported model")


def exportable(ckpt_path: Path, format: str) -> DigitsModule:
    """The checkpoint's model, not compiled (the exporters trace the plain network); a number
    reader (model=crnn) exports as ONNX only."""
    checkpoint = read_checkpoint(ckpt_path)
    if not reads_numbers(checkpoint["hyper_parameters"]["net"]):
        return model_from(checkpoint, compile=False)
    if format != "onnx":
        raise DigitsError(
            f"format={format}: a number reader's checkpoint ({ckpt_path}) exports as ONNX only "
            "(format=onnx): its strips have no page or TorchScript reader yet"
        )
    return model_from(checkpoint)


def onnx_model_of(ckpt_path: str | Path) -> OnnxModel | OnnxStripReader:
    """A checkpoint exported in memory and loaded into onnxruntime (what `digits.serve` runs): a
    digit classifier's, or a number reader's."""
    ckpt_path = Path(ckpt_path)
    model = exportable(ckpt_path, "onnx")
    serialized = onnx_proto(model, metadata(model, ckpt_path)).SerializeToString()
    if isinstance(model, NumberReader):
        return OnnxStripReader(ckpt_path, serialized)
    return OnnxModel(ckpt_path, serialized)


def to_torchscript(classifier: DigitClassifier, path: Path, info: dict[str, str]) -> None:
    """Trace to TorchScript; the metadata travels as the file's extra file `digits.json`."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice: the format is asked for
        # Lightning's own trace of the logits (tracing the LightningModule directly touches its
        # `.trainer`, which raises outside a Trainer), then the softmax on top.
        logits = classifier.to_torchscript(method="trace", example_inputs=example_batch())
        model = Probabilities(logits, classifier.temperature).eval()
        traced = torch.jit.trace(model, example_batch())
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"digits.json": json.dumps(info)})
    write_atomically(path, buffer.getbuffer(), "the exported model")


WRITERS = {"onnx": to_onnx, "torchscript": to_torchscript}


def export(classifier: DigitsModule, ckpt_path: Path, path: Path, format: str) -> dict[str, Any]:
    """Write `classifier` (loaded from `ckpt_path`, not compiled: the exporters trace the plain
    network) to `path` in `format`; returns its metadata."""
    info = metadata(classifier, ckpt_path)
    WRITERS[format](classifier, path, info)
    return info
