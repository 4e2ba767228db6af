"""Images without labels as a data option (`data=unlabelled`): every image file under a folder (its
subfolders too), read as `digits.predict` reads a photo, all of them training images. For
`digits.adapt`, which adapts a trained model to them (nothing scores it: there are no labels, so no
validation and no test split); training and evaluation need labels and refuse it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

import torch

from digits.config.schema import schema_of, store_schemas
from digits.constraints import OneOf
from digits.data.datamodule import (
    Augment,
    BatchSize,
    DigitsDataModule,
    NumWorkers,
    OnDevice,
    Split,
)
from digits.data.folder import Labelled, files_digest, prepared
from digits.data.prepared import PreparedImages
from digits.errors import DigitsError
from digits.reading.images import IMAGE_SUFFIXES
from digits.reading.preprocess import FIELD, PREPROCESSORS

# The label every image has here (a batch still carries one per image).
UNLABELLED = -1


def unlabelled_files(root: str) -> Labelled:
    """Every image file under `root`, sorted, each with UNLABELLED."""
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise DigitsError(f"data.root={root}: no such folder; give a folder of images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DigitsError(
            f"data.root={root}: no images (files with a suffix of "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}, in it or its subfolders)"
        )
    return [(path, UNLABELLED) for path in files]


class UnlabelledDataModule(DigitsDataModule):
    """The images under `root`, prepared as `digits.predict` reads a photo (`preprocess`), all
    training images; batches carry UNLABELLED as each image's label. Its arguments are
    conf/data/unlabelled.yaml's settings."""

    LABELLED: ClassVar[bool] = False

    def __init__(
        self,
        root: str | None,
        preprocess: Annotated[str, OneOf(tuple(PREPROCESSORS))],
        cache_dir: str,
        skip_bad: bool,
        batch_size: BatchSize,
        num_workers: NumWorkers,
        pin_memory: bool,
        augment: Augment,
        on_device: OnDevice,
    ) -> None:
        super().__init__()
        if root is None:
            raise DigitsError("data=unlabelled needs data.root=<folder of images>")
        self.save_hyperparameters()
        self._images: Split | None = None

    def images(self) -> Split:
        """Every image, read once (decoded through the cache)."""
        if self._images is None:
            hp = self.hparams
            cache = PreparedImages(Path(hp.cache_dir), hp.preprocess)
            self._images = prepared(unlabelled_files(hp.root), cache, hp.skip_bad)
        return self._images

    def prepare_data(self) -> None:
        self.images()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = self.in_memory_set(*self.images())
            # No labels, nothing to validate on (digits.adapt turns validation off).
            self.val_set = self.in_memory_set(
                torch.zeros(0, FIELD, FIELD, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
            )

    def training_images(self) -> int:
        return len(self.images()[1])

    def test_set_id(self) -> dict[str, Any]:
        return {}

    @classmethod
    def provenance(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Where the images are, how they are read, and a digest of every file."""
        images = unlabelled_files(settings["root"])
        root = str(Path(settings["root"]).expanduser().resolve())
        return {"root": root, "preprocess": settings["preprocess"], "images": len(images),
                "md5": files_digest(images)}  # fmt: skip


# conf/data/unlabelled.yaml's schema: the constructor's arguments are its settings.
store_schemas(data_unlabelled=schema_of(UnlabelledDataModule, target=True, plumbing=("_convert_",)))
