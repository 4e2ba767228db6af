"""Your own labelled digits as a data option (`data=folder`): a folder in torchvision's ImageFolder
layout (`<root>/<label>/<any name>.png`, the labels the folder names 0-9), or a CSV of `file,label`
(paths relative to the CSV). Every image goes through the reading preprocessing of
`digits.predict` (`preprocess`), decoded once (digits.data.prepared); a seeded split stratified by
label holds out validation (and test, unless a test folder or CSV is given).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torchvision.datasets.folder import find_classes, make_dataset

from digits.config.schema import schema_of, store_schemas
from digits.constraints import SEED, OneOf
from digits.data.datamodule import (
    Augment,
    BatchSize,
    Fraction,
    HeldOutSplits,
    NumWorkers,
    OnDevice,
    Split,
)
from digits.data.prepared import PreparedImages, content_hash
from digits.errors import DigitsError
from digits.reading.images import IMAGE_SUFFIXES
from digits.reading.preprocess import PREPROCESSORS

DIGIT_NAMES = tuple(str(digit) for digit in range(10))
Labelled = list[tuple[Path, int]]


def listed(root: str | None, labels: str | None, key: str) -> Labelled:
    """The (file, label) pairs of an ImageFolder layout (`root`) or a CSV (`labels`)."""
    if labels is not None:
        return csv_listed(Path(labels).expanduser(), key.replace("root", "labels"))
    folder = Path(str(root)).expanduser()
    if not folder.is_dir():
        raise DigitsError(f"data.{key}={root}: no such folder; give a folder of <label>/<image>")
    try:
        classes, _ = find_classes(folder)
    except FileNotFoundError:
        classes = []
    strays = [name for name in classes if name not in DIGIT_NAMES]
    if strays:
        raise DigitsError(
            f"data.{key}={root}: class folder {strays[0]!r} is not a digit; name the class "
            "folders 0-9 (the label of the images inside)"
        )
    found = []  # make_dataset refuses an empty class list: no class folders, no images
    if classes:
        labels = {name: int(name) for name in classes}
        found = make_dataset(folder, labels, tuple(IMAGE_SUFFIXES), allow_empty=True)
    if not found:
        raise DigitsError(
            f"data.{key}={root}: no images in <label>/ folders (0-9) with a suffix of "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}"
        )
    for name in classes:
        if not any(label == int(name) for _, label in found):
            rank_zero_warn(f"{folder / name}: no images, so digit {name} is not learned from it")
    return [(Path(path), label) for path, label in found]


def csv_listed(table: Path, key: str) -> Labelled:
    """The rows of a `file,label` CSV, each file checked to exist and each label to be 0-9."""
    if not table.is_file():
        raise DigitsError(f"data.{key}={table}: no such file; give a CSV of file,label rows")
    with table.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"file", "label"} <= set(rows[0]):
        raise DigitsError(f"data.{key}={table}: needs a header file,label and a row per image")
    pairs = []
    for line, row in enumerate(rows, start=2):
        path = table.parent / (row["file"] or "")
        if row["label"] not in DIGIT_NAMES:
            raise DigitsError(f"{table}, line {line}: label {row['label']!r} is not a digit 0-9")
        if not row["file"] or not path.is_file():
            raise DigitsError(f"{table}, line {line}: no such file {path}")
        pairs.append((path, int(row["label"])))
    return pairs


def prepared(images: Labelled, cache: PreparedImages, skip_bad: bool) -> Split:
    """The images and labels of `images` that could be read, each decoded once (the cache); a file
    that cannot be read is refused naming it, or with `skip_bad` left out and counted."""
    files = [path for path, _ in images]
    hashes = [content_hash(path) for path in files]
    cache.add(files, hashes)
    bad = [
        (path, cache.failed[key])
        for path, key in zip(files, hashes, strict=True)
        if key in cache.failed
    ]
    if bad and not skip_bad:
        path, reason = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DigitsError(
            f"{path}: {reason}{more}; remove it, or add data.skip_bad=true to leave such files out"
        )
    if bad:
        rank_zero_warn(f"data.skip_bad: left out {len(bad)} file(s) that could not be read")
    kept = [
        (key, label) for key, (_, label) in zip(hashes, images, strict=True) if key in cache.images
    ]
    if not kept:
        raise DigitsError(f"{files[0].parent}: none of the images could be read")
    return (
        torch.stack([cache.images[key] for key, _ in kept]),
        torch.tensor([label for _, label in kept]),
    )


def files_digest(images: Labelled) -> str:
    """A digest of every file's content and its label: what a run read, for its manifest."""
    lines = "\n".join(sorted(f"{content_hash(path)} {label}" for path, label in images))
    return hashlib.md5(lines.encode(), usedforsecurity=False).hexdigest()


class FolderDataModule(HeldOutSplits):
    """Labelled images from a folder (`root`) or a CSV (`labels`), prepared as `digits.predict`
    reads a photo (`preprocess`). Validation is `val_fraction` of them (None: none, for a few
    examples per digit: nothing chooses a checkpoint, the last weights are tested) and test
    `test_fraction` (split stratified by label, seeded by `split_seed`), unless `test_root` or
    `test_labels` gives the test images. Files that cannot be read are refused, naming the file, or skipped and counted
    with `skip_bad`. Its arguments are conf/data/folder.yaml's settings."""

    UNUSED_WITH: ClassVar = {
        "root": ("labels", "the CSV's rows name the images"),
        "test_fraction": ("test_root", "the test images are the test folder's"),
    }

    def __init__(
        self,
        root: str | None,
        labels: str | None,
        test_root: str | None,
        test_labels: str | None,
        preprocess: Annotated[str, OneOf(tuple(PREPROCESSORS))],
        val_fraction: Fraction | None,
        test_fraction: Fraction,
        split_seed: Annotated[int, SEED],
        cache_dir: str,
        skip_bad: bool,
        batch_size: BatchSize,
        num_workers: NumWorkers,
        pin_memory: bool,
        augment: Augment,
        on_device: OnDevice,
    ) -> None:
        super().__init__()
        if root is None and labels is None:
            raise DigitsError("data=folder needs data.root=<folder> or data.labels=<csv>")
        self.save_hyperparameters()

    def _listings(self) -> tuple[Labelled, Labelled | None]:
        """(the labelled images to train and validate on (and test, without a test set), the
        test set's, or None)."""
        hp = self.hparams
        pool = listed(hp.root, hp.labels, "root")
        if hp.test_root is None and hp.test_labels is None:
            return pool, None
        return pool, listed(hp.test_root, hp.test_labels, "test_root")

    def read(self) -> tuple[Split, Split | None]:
        """The folder's (or CSV's) images, each decoded once (the cache), and the test set's."""
        pool, test = self._listings()
        cache = PreparedImages(Path(self.hparams.cache_dir), self.hparams.preprocess)
        skip_bad = self.hparams.skip_bad
        return prepared(pool, cache, skip_bad), None if test is None else prepared(
            test, cache, skip_bad
        )

    @classmethod
    def provenance(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Where the images are, how they are read, and a digest of every file and its label."""
        where = {
            key: settings[key] and str(Path(settings[key]).expanduser().resolve())
            for key in ("root", "labels", "test_root", "test_labels")
        }
        images = listed(settings["root"], settings["labels"], "root")
        if settings["test_root"] is not None or settings["test_labels"] is not None:
            images += listed(settings["test_root"], settings["test_labels"], "test_root")
        digest = files_digest(images)
        return where | {"preprocess": settings["preprocess"], "images": len(images), "md5": digest}


# conf/data/folder.yaml's schema: the constructor's arguments are its settings.
store_schemas(data_folder=schema_of(FolderDataModule, target=True, plumbing=("_convert_",)))
