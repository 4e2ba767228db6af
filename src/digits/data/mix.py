"""Several data options at once (`data=mix`): each source (MNIST and USPS by default; add one with
`+data@data.sources.<name>=<option>`, drop one with `~data@data.sources.<name>`) is split by its
own settings; training draws from all of them (`weights`: how many times each source's training
images go into an epoch), validation and test pool them (checkpoints are chosen on the pooled val/acc), and each source's
accuracy is logged beside the pooled one: val/<source>/acc each validation, test/<source>/acc in
the test report.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import torch

from digits.config.schema import schema_of, store_schemas
from digits.data.building import data_class
from digits.data.datamodule import Augment, BatchSize, DigitsDataModule, NumWorkers, OnDevice, Split
from digits.data.idx import tensors_md5
from digits.errors import DigitsError


class MixDataModule(DigitsDataModule):
    """The data options of `sources` (name: its settings, as conf/data/<option>.yaml gives them),
    mixed. Its arguments are conf/data/mix.yaml's settings."""

    def __init__(
        self,
        sources: Mapping[str, Any],
        # name: how many times the source's training images go into an epoch (> 0; 1 if left out)
        weights: Mapping[str, float] | None,
        batch_size: BatchSize,
        num_workers: NumWorkers,
        pin_memory: bool,
        augment: Augment,
        on_device: OnDevice,
    ) -> None:
        super().__init__()
        if not sources:
            raise DigitsError(
                "data=mix needs sources: add one with +data@data.sources.<name>=<option>"
            )
        for name, weight in (weights or {}).items():
            if name not in sources:
                raise DigitsError(
                    f"data.weights.{name}: no such source; the sources are {', '.join(sources)}"
                )
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
                raise DigitsError(
                    f"data.weights.{name}={weight}: must be a number > 0 (how many times the "
                    "source's training images go into an epoch)"
                )
        self.save_hyperparameters()
        # Augmentation is the mix's own, per batch (the sources' batches are never drawn).
        self.sources = {
            name: source_class(name, settings)(**own_settings(settings) | {"augment": None})
            for name, settings in sources.items()
        }
        self._splits: dict[str, Split] | None = None
        self.ranges: dict[str, dict[str, slice]] = {}  # split: source: its images in the split

    def prepare_data(self) -> None:
        for source in self.sources.values():
            source.prepare_data()

    def _mixed(self, split: str, parts: dict[str, Split]) -> Split:
        """One split of every source, one after the other (training: each repeated by weight)."""
        images, labels, start = [], [], 0
        for name, (source_images, source_labels) in parts.items():
            if split == "train":
                picked = drawn(len(source_labels), (self.hparams.weights or {}).get(name, 1.0))
                source_images, source_labels = source_images[picked], source_labels[picked]
            self.ranges.setdefault(split, {})[name] = slice(start, start + len(source_labels))
            start += len(source_labels)
            images.append(source_images)
            labels.append(source_labels)
        return torch.cat(images), torch.cat(labels)

    def splits(self) -> dict[str, Split]:
        """train, val and test of every source, mixed."""
        if self._splits is None:
            for name, source in self.sources.items():
                if not source.in_memory:
                    raise DigitsError(f"data.sources.{name}: mixes the in-memory pipeline only")
                source.setup()
            self._splits = {
                split: self._mixed(split, {
                    name: (getattr(source, f"{split}_set").images, getattr(source, f"{split}_set").labels)
                    for name, source in self.sources.items()
                })
                for split in ("train", "val", "test")
            }  # fmt: skip
        return self._splits

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            splits = self.splits()
            self.train_set, self.val_set, self.test_set = (
                self.in_memory_set(*splits[name]) for name in ("train", "val", "test")
            )

    def training_images(self) -> int:
        return len(self.splits()["train"][1])

    def source_slices(self, split: str) -> dict[str, slice]:
        self.splits()
        return self.ranges[split]

    def test_set_id(self) -> dict[str, Any]:
        return {"md5": tensors_md5(*self.splits()["test"])}

    @classmethod
    def provenance(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Each source's own record, and a digest of them all."""
        records = {
            name: source_class(name, source).provenance(own_settings(source))
            for name, source in settings["sources"].items()
        }
        text = json.dumps(records, sort_keys=True).encode()
        return {"sources": records, "md5": hashlib.md5(text, usedforsecurity=False).hexdigest()}


def source_class(name: str, settings: Mapping[str, Any]) -> type[DigitsDataModule]:
    """The data option a source's `_target_` names: one of digits.data's, or your own that you
    trust (a checkpoint's settings name the code that reads the data, never choose it); not a mix."""
    where = f"data.sources.{name}._target_"
    found = data_class(str(settings.get("_target_")), where)
    if issubclass(found, MixDataModule):
        raise DigitsError(f"{where}: a mix cannot be a source of a mix; list its sources instead")
    return found


def own_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A source's settings without Hydra's keys (_target_, _convert_)."""
    return {key: value for key, value in settings.items() if not key.startswith("_")}


def drawn(count: int, weight: float) -> torch.Tensor:
    """The indices of `count` images drawn `weight` times: each whole time all of them, the
    fraction left a seeded subset."""
    whole, part = int(weight), weight - int(weight)
    subset = torch.randperm(count, generator=torch.Generator().manual_seed(0))[
        : round(part * count)
    ]
    return torch.cat([torch.arange(count).repeat(whole), subset])


# conf/data/mix.yaml's schema: the constructor's arguments are its settings.
store_schemas(data_mix=schema_of(MixDataModule, target=True, plumbing=("_convert_", "_recursive_")))
