"""The data: MNIST's IDX files, the LightningDataModule over them, batch augmentation.

MNISTDataModule is loaded on first use (it imports Lightning, which reading IDX files does not need).
"""

from importlib import import_module
from typing import Any

__all__ = ["MNISTDataModule"]


def __getattr__(name: str) -> Any:
    if name != "MNISTDataModule":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return import_module(f"{__name__}.datamodule").MNISTDataModule
