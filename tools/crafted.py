"""Crafted and damaged model files, as someone could share them: a checkpoint whose settings name
code to run, one with NaN weights, ONNX models shaped unlike a digits export. Used by the tests and
`make hostile` (tools/hostile.py) to check that loading one runs nothing and refuses it in one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper


def rewritten_checkpoint(source: Path, dest: Path, edit: Callable[[dict], None]) -> Path:
    """A copy of the checkpoint at `source`, saved at `dest` after `edit` changed its contents
    (a crafted or damaged file, as someone could share)."""
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    edit(checkpoint)
    torch.save(checkpoint, dest)
    return dest


def running_code(marker: Path) -> dict[str, dict]:
    """Network settings that, if a checkpoint's settings were built as they say, would create
    `marker` (each through another callable)."""
    return {
        "os.system": {"_target_": "os.system", "_args_": [f"touch {marker}"]},
        "subprocess.run": {"_target_": "subprocess.run", "_args_": [["touch", str(marker)]]},
        "builtins.eval": {
            "_target_": "builtins.eval",
            "_args_": [f"open({str(marker)!r}, 'w').close()"],
        },
    }


def onnx_classifier(path: Path, *, batch: int | str = "N", outputs: int = 10,
                    count: int = 1, dtype: int = 1, nan: bool = False) -> Path:  # fmt: skip
    """A small ONNX model shaped like (or unlike) a digits export: Flatten, MatMul to `outputs`
    classes, Softmax; `batch` a fixed size or a name (free), `count` outputs, input `dtype`
    (1 float, 11 double), NaN weights."""
    weights = np.full((28 * 28, outputs), np.nan if nan else 0.01, dtype=np.float32)
    if dtype == TensorProto.DOUBLE:
        weights = weights.astype(np.float64)
    nodes = [
        helper.make_node("Flatten", ["images"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"]),
    ]
    names = ["probabilities"] + [f"extra{i}" for i in range(count - 1)]
    nodes += [helper.make_node("Identity", ["logits"], [name]) for name in names[1:]]
    graph = helper.make_graph(
        nodes,
        "digits-like",
        [helper.make_tensor_value_info("images", dtype, [batch, 1, 28, 28])],
        [helper.make_tensor_value_info(name, dtype, [batch, outputs]) for name in names],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path
