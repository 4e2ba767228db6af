"""`data=emnist` and `data=qmnist`: torchvision's own classes over small files written in each
set's real format and layout (no set but MNIST and USPS's training split is on this machine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from digit_files import typeset_digits, write_idx  # tools/digit_files.py

from digits.data.emnist import EMNISTDataModule
from digits.data.emnist import raw_files as emnist_files
from digits.data.qmnist import QMNISTDataModule
from digits.data.qmnist import raw_files as qmnist_files
from digits.errors import DigitsError

SETTINGS = dict(
    download=False, val_fraction=0.1, split_seed=42, batch_size=32, num_workers=0,
    pin_memory=False, augment=None, on_device="auto",
)  # fmt: skip


def labelled(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    labels = (np.arange(count) % 10).astype(np.uint8)
    return typeset_digits(labels, seed), labels


def test_emnist_digits_are_turned_upright(tmp_path: Path) -> None:
    upright = {}
    for part, count in (("train", 60), ("test", 20)):
        images, labels = labelled(count, seed=len(part))
        upright[part] = images
        files = emnist_files(tmp_path, part)
        write_idx(files[0], images.transpose(0, 2, 1).copy())  # EMNIST's files hold them transposed
        write_idx(files[1], labels)
    data = EMNISTDataModule(root=str(tmp_path), **SETTINGS)
    data.setup()
    assert (len(data.train_set), len(data.val_set), len(data.test_set)) == (54, 6, 20)
    assert torch.equal(data.test_set.images, torch.from_numpy(upright["test"]))
    assert data.test_set.labels.tolist() == [i % 10 for i in range(20)]


def test_qmnist_tests_on_the_digits_mnist_left_out(tmp_path: Path) -> None:
    for part, count in (("train", 50), ("test", 10_030)):
        images, labels = labelled(count, seed=len(part))
        # QMNIST's labels: N x 8 int32 (the digit, then NIST's writer and form ids, ...).
        extended = np.zeros((count, 8), dtype=np.int32)
        extended[:, 0] = labels
        extended[:, 1] = np.arange(count)
        write_idx(qmnist_files(tmp_path, part)[0], images)
        write_idx(qmnist_files(tmp_path, part)[1], extended)
    lost = QMNISTDataModule(root=str(tmp_path), test_part="test50k", **SETTINGS)
    lost.setup()
    assert (len(lost.train_set), len(lost.val_set), len(lost.test_set)) == (45, 5, 30)
    assert lost.test_set.labels.tolist() == [(10_000 + i) % 10 for i in range(30)]
    mnist_own = QMNISTDataModule(root=str(tmp_path), test_part="test10k", **SETTINGS)
    assert len(mnist_own.splits()["test"][1]) == 10_000


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda root: EMNISTDataModule(root=root, **SETTINGS), "EMNIST/raw/emnist-digits-train-images-idx3-ubyte: not found (EMNIST's digits, train"),
        (lambda root: QMNISTDataModule(root=root, test_part="test50k", **SETTINGS), "QMNIST/raw/qmnist-train-images-idx3-ubyte: not found (QMNIST's train"),
    ],
)  # fmt: skip
def test_a_missing_file_is_named_with_where_it_belongs(make, expected: str, tmp_path: Path) -> None:
    with pytest.raises(DigitsError, match=r"data\.download=true") as refused:
        make(str(tmp_path)).prepare_data()
    assert f"{tmp_path}/{expected}" in str(refused.value)
