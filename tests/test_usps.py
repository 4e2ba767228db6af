"""`data=usps`: USPS's own files read by torchvision, each 16x16 digit put into MNIST's 28x28 layout
by MNIST's rule; its test split official or held out; evaluate an MNIST model on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from digit_files import write_usps  # tools/digit_files.py

from conftest import REAL_DATA, run_entry_point
from digits.data.usps import USPSDataModule
from digits.errors import DigitsError
from digits.runs import RunDir

SETTINGS = dict(
    download=False, val_fraction=0.1, test_fraction=None, split_seed=42, batch_size=32,
    num_workers=0, pin_memory=False, augment=None, on_device="auto",
)  # fmt: skip


@pytest.fixture(scope="module")
def usps_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("USPS")
    write_usps(root, per_class=10)
    write_usps(root, per_class=3, name="usps.t.bz2", seed=1)
    return root


def test_usps_digits_are_laid_out_as_mnist_s_and_tested_on_the_official_split(
    usps_root: Path,
) -> None:
    data = USPSDataModule(root=str(usps_root), **SETTINGS)
    data.setup()
    assert (len(data.train_set), len(data.val_set), len(data.test_set)) == (90, 10, 30)
    images = data.train_set.images.float()
    assert images.shape[1:] == (28, 28) and images.dtype == torch.float32
    for image in images:  # each digit's box is 20 px on its long side, centred by mass
        box = image > 0
        height = int(box.any(dim=1).sum())
        width = int(box.any(dim=0).sum())
        assert max(height, width) in (20, 21)
        mass = image / image.sum()
        centre = (
            (mass.sum(dim=1) * torch.arange(28)).sum(),
            (mass.sum(dim=0) * torch.arange(28)).sum(),
        )
        assert all(abs(float(c) - 13.5) <= 1.0 for c in centre)


def test_without_the_test_file_a_share_of_the_training_digits_is_held_out(
    usps_root: Path, tmp_path: Path
) -> None:
    shutil.copy(usps_root / "usps.bz2", tmp_path)
    with pytest.raises(DigitsError, match=r"usps.t.bz2: not found .* data.test_fraction=0.2"):
        USPSDataModule(root=str(tmp_path), **SETTINGS).setup()
    data = USPSDataModule(root=str(tmp_path), **SETTINGS | {"test_fraction": 0.2})
    data.setup()
    assert (len(data.train_set), len(data.val_set), len(data.test_set)) == (70, 10, 20)
    with pytest.raises(DigitsError, match=r"none/usps.bz2: not found \(USPS's train split"):
        USPSDataModule(root=str(tmp_path / "none"), **SETTINGS).setup()


def test_a_mnist_model_is_evaluated_on_usps_and_a_model_trains_on_it(
    trained_run: Path, usps_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = RunDir(tmp_path / "run")
    shutil.copytree(trained_run, run.path, ignore=shutil.ignore_patterns(".lock"))
    args = [f"run={run.path}", "data=usps", f"data.root={usps_root}", "tensorboard=false"]
    assert run_entry_point("evaluate", args, monkeypatch) == 0
    (report,) = run.path.glob("evaluation_on_usps-*")
    assert json.loads((report / "metrics.json").read_text())["images"] == 30
    usps_run = RunDir(tmp_path / "usps-run")
    args = ["data=usps", f"data.root={usps_root}", "trainer.max_epochs=1", "logger=none",
            f"hydra.run.dir={usps_run.path}"]  # fmt: skip
    assert run_entry_point("train", args, monkeypatch) == 0
    metrics = json.loads(usps_run.metrics_file.read_text())
    assert metrics["test/set"]["images"] == 30
    assert json.loads(usps_run.manifest_file.read_text())["data"]["md5"].keys() == {
        "usps.bz2", "usps.t.bz2"
    }  # fmt: skip


@pytest.mark.real_data
def test_the_real_usps_training_split_reads_with_its_documented_class_counts() -> None:
    if not (REAL_DATA / "USPS" / "usps.bz2").is_file():
        pytest.skip(f"USPS not found under {REAL_DATA}")
    data = USPSDataModule(root=str(REAL_DATA / "USPS"), **SETTINGS | {"test_fraction": 0.2})
    (images, labels), test = data.read()
    assert test is None and images.shape == (7291, 28, 28)
    counts = torch.bincount(labels, minlength=10).tolist()
    assert counts == [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]  # its README's
