"""The models: the networks (conf/model/), the LightningModule that wraps them, loading checkpoints.

Checkpoints name their network by `_target_` (e.g. digits.models.MLP), hence the names here. They are
loaded on first use: the LightningModule imports Lightning, which the config schema and
`digits.predict` of an .onnx file do not need.
"""

from importlib import import_module
from typing import Any

HOMES = {
    "load_classifier": "checkpoint",
    "DigitClassifier": "classifier",
    "CNN": "networks",
    "MLP": "networks",
    "LeNet": "networks",
    "LSTMReader": "networks",
    "NUM_CLASSES": "networks",
}
__all__ = sorted(HOMES)


def __getattr__(name: str) -> Any:
    if name not in HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{HOMES[name]}"), name)
