"""How labelled images split. MNIST: which of its training images validate: a seeded hold-out of `val_size` images, or fold
`fold` of `folds` (k-fold cross-validation: the folds are disjoint and together cover the training
images once). The rest train; the official test set is never part of it. The order is
torch.randperm with its own seeded generator: the same in every process and on every machine."""

from __future__ import annotations

import torch

from digits.errors import DigitsError


def check_folds(folds: int | None, fold: int | None) -> None:
    """`data.fold` names one of `data.folds` folds, and neither comes without the other."""
    if folds is None and fold is None:
        return
    if folds is None:
        raise DigitsError(
            f"data.fold={fold} needs data.folds, the number of folds of k-fold cross-validation "
            "(e.g. data.folds=5)"
        )
    sweep = f"-m data.fold='range({folds})'"
    if fold is None:
        raise DigitsError(
            f"data.folds={folds} needs data.fold, the fold that validates: one of 0..{folds - 1} "
            f"(every fold: {sweep})"
        )
    if not 0 <= fold < folds:
        raise DigitsError(
            f"data.fold={fold} is out of range: use 0..{folds - 1} (data.folds={folds}; every "
            f"fold: {sweep})"
        )


def split_indices(
    count: int, val_size: int, split_seed: int, folds: int | None, fold: int | None, root: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, validation indices) into the `count` training images found in `root`."""
    check_folds(folds, fold)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(split_seed))
    if folds is None:
        if val_size >= count:  # the schema knows MNIST has 60,000; this folder may hold fewer
            raise DigitsError(
                f"data.val_size={val_size} is out of range: use 1..{count - 1} "
                f"(validation is taken from the {count} training images in {root})"
            )
        return order[val_size:], order[:val_size]
    if folds > count:
        raise DigitsError(
            f"data.folds={folds} is out of range: use 2..{count} (one fold per training image "
            f"at most: {count} in {root})"
        )
    slices = torch.tensor_split(order, folds)
    return torch.cat(slices[:fold] + slices[fold + 1 :]), slices[fold]


def stratified_split(
    labels: torch.Tensor, val_fraction: float | None, test_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(training, validation, test indices) of labelled images, each split holding about its share
    of every label. Each label's images are put in a seeded random order and spread evenly along
    one sequence (the k-th of n at (k + 0.5) / n); test takes the head, validation the next part.
    `val_fraction` None: no validation images (all but the test train)."""
    generator = torch.Generator().manual_seed(seed)
    position = torch.empty(len(labels))
    for label in labels.unique():
        members = (labels == label).nonzero().flatten()
        order = members[torch.randperm(len(members), generator=generator)]
        position[order] = (torch.arange(len(members)) + 0.5) / len(members)
    sequence = torch.argsort(position, stable=True)
    tests, vals = round(len(labels) * test_fraction), round(len(labels) * (val_fraction or 0))
    if (
        len(labels) - tests - vals < 1
        or (val_fraction and vals < 1)
        or (test_fraction and tests < 1)
    ):
        raise DigitsError(
            f"data.val_fraction={val_fraction if val_fraction is None else f'{val_fraction:g}'}, "
            f"data.test_fraction={test_fraction:g}: {len(labels)} images leave a split empty; "
            "give more images or other fractions"
        )
    return sequence[tests + vals :], sequence[tests : tests + vals], sequence[:tests]
