"""The data options (mnist.py: MNIST's IDX files; folder.py: a folder or CSV of labelled images;
usps.py, emnist.py, qmnist.py: standard sets through torchvision; mix.py: several at once;
unlabelled.py: images without labels, for digits.adapt; numbers.py: number strips made of
digits, for the sequence reader),
the batching they share (datamodule.py), batch augmentation.

The data modules are loaded on first use (they import Lightning, which reading IDX files does not
need).
"""

from importlib import import_module
from typing import Any

MODULES = {
    "MNISTDataModule": "mnist",
    "FolderDataModule": "folder",
    "USPSDataModule": "usps",
    "EMNISTDataModule": "emnist",
    "QMNISTDataModule": "qmnist",
    "MixDataModule": "mix",
    "UnlabelledDataModule": "unlabelled",
    "NumbersDataModule": "numbers",
}
__all__ = list(MODULES)


def __getattr__(name: str) -> Any:
    if name not in MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{MODULES[name]}"), name)
