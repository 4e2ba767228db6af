"""The data: MNIST's IDX files, the LightningDataModule over them, batch augmentation."""

from digits.data.datamodule import MNISTDataModule

__all__ = ["MNISTDataModule"]
