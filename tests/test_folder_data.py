"""`data=folder`: your own labelled photos, in torchvision's ImageFolder layout or a CSV, read as
`digits.predict` reads a photo, decoded once into a cache, split by label, trained and tested."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from digit_files import write_digit_folder, write_labels_csv  # tools/digit_files.py

import digits.data.prepared
from conftest import run_entry_point
from digits.data.folder import FolderDataModule, listed
from digits.data.split import stratified_split
from digits.errors import DigitsError
from digits.models.checkpoint import model_from, read_checkpoint
from digits.runs import RunDir

SETTINGS = dict(
    root=None, labels=None, test_root=None, test_labels=None, preprocess="mnist",
    val_fraction=0.2, test_fraction=0.2, split_seed=42, skip_bad=False, batch_size=16,
    num_workers=0, pin_memory=False, augment=None, on_device="auto",
)  # fmt: skip


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    write_digit_folder(root, per_class=12)
    return root


def folder_data(cache: Path, **settings: object) -> FolderDataModule:
    return FolderDataModule(**(SETTINGS | {"cache_dir": str(cache)} | settings))


def test_a_folder_of_photos_trains_and_tests_and_its_checkpoint_reads_alone(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    run = RunDir(tmp_path / "run")
    args = ["data=folder", f"data.root={photos}", f"data.cache_dir={tmp_path / 'cache'}",
            "model=cnn", "trainer.max_epochs=8", "logger=none", f"hydra.run.dir={run.path}"]  # fmt: skip
    assert run_entry_point("train", args, monkeypatch) == 0
    metrics = json.loads(run.metrics_file.read_text())
    # 120 photos: 24 test, 19 validation (stratified: 2 or 3 of each digit), the rest train.
    assert metrics["test/set"]["images"] == 24
    assert metrics["test/acc"] >= 0.5  # chance is 0.1: the photos were read as digits
    data = json.loads(run.manifest_file.read_text())["data"]
    assert data["root"] == str(photos) and data["images"] == 120 and len(data["md5"]) == 32
    checkpoint = read_checkpoint(run.best_checkpoint())  # weights_only, as every load is
    assert checkpoint["data_module"] == "FolderDataModule"
    assert model_from(checkpoint)(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    # digits.evaluate on the run's own data: the same test images, the same accuracy.
    assert run_entry_point("evaluate", [f"run={run.path}", "tensorboard=false"], monkeypatch) == 0
    evaluated = json.loads((run.evaluation("test") / "metrics.json").read_text())
    assert evaluated["images"] == 24
    assert evaluated["accuracy"] == pytest.approx(metrics["test/acc"])


def test_a_mnist_model_is_evaluated_on_a_folder_of_photos(
    trained_run: Path, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = RunDir(tmp_path / "run")
    shutil.copytree(trained_run, run.path, ignore=shutil.ignore_patterns(".lock"))
    own = sorted(run.path.rglob("*"))  # the run's own evaluation, if another test made one
    monkeypatch.setenv("DIGITS_CACHE_DIR", str(tmp_path / "cache"))
    args = [f"run={run.path}", "data=folder", f"data.root={photos}", "tensorboard=false"]
    assert run_entry_point("evaluate", args, monkeypatch) == 0
    (report,) = run.path.glob("evaluation_on_folder-photos*")  # beside, not over, evaluation/
    result = json.loads((report / "metrics.json").read_text())
    assert result["images"] == 24 and sum(map(sum, result["confusion_matrix"])) == 24
    assert (report / "confusion_matrix.png").is_file() and (report / "mistakes.png").is_file()
    assert [path for path in own if path.is_file()] == [
        path
        for path in sorted(run.path.rglob("*"))
        if path.is_file() and report not in path.parents
    ]  # nothing of the run's own was written over


def test_images_are_decoded_once_then_read_from_the_cache(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[Path] = []
    prepare = digits.data.prepared.prepare
    monkeypatch.setattr(
        digits.data.prepared,
        "prepare",
        lambda path, how: decoded.append(path) or prepare(path, how),
    )
    first = folder_data(tmp_path, root=str(photos))
    first.prepare_data()
    first.setup()
    assert len(decoded) == 120
    again = folder_data(tmp_path, root=str(photos))  # another run: the cache file, no decoding
    again.setup()
    assert len(decoded) == 120
    assert torch.equal(again.train_set.images, first.train_set.images)
    other = folder_data(tmp_path, root=str(photos), preprocess="naive")  # its own entries
    other.setup()
    assert len(decoded) == 240


def test_a_damaged_cache_is_rebuilt_not_trusted(photos: Path, tmp_path: Path) -> None:
    (tmp_path / "prepared-mnist.pt").write_bytes(b"half a file")
    data = folder_data(tmp_path, root=str(photos))
    data.setup()
    assert len(data.train_set) + len(data.val_set) + len(data.test_set) == 120
    assert torch.load(tmp_path / "prepared-mnist.pt", weights_only=True)["images"].shape[0] == 120


def test_a_csv_of_files_and_labels_reads_the_same_images(photos: Path, tmp_path: Path) -> None:
    pairs = listed(str(photos), None, "root")
    table = photos / "labels.csv"
    write_labels_csv(table, pairs)
    assert listed(None, str(table), "root") == pairs
    by_folder, by_csv = (
        folder_data(tmp_path, root=str(photos)),
        folder_data(tmp_path, labels=str(table)),
    )
    by_folder.setup()
    by_csv.setup()
    assert by_csv.test_set_id() == by_folder.test_set_id()


def test_a_test_folder_of_its_own_is_the_whole_test_set(photos: Path, tmp_path: Path) -> None:
    test_root = tmp_path / "test-photos"
    write_digit_folder(test_root, per_class=2, seed=1)
    data = folder_data(tmp_path, root=str(photos), test_root=str(test_root))
    data.setup()
    assert len(data.test_set) == 20
    assert len(data.train_set) + len(data.val_set) == 120


def test_the_split_is_stratified_seeded_and_disjoint() -> None:
    labels = torch.arange(10).repeat_interleave(torch.arange(10, 110, 10))  # 10, 20, ... 100
    train, val, test = stratified_split(labels, 0.1, 0.2, seed=3)
    assert sorted(torch.cat([train, val, test]).tolist()) == list(range(len(labels)))
    for digit in range(10):
        members = int((labels == digit).sum())
        assert abs(int((labels[test] == digit).sum()) - 0.2 * members) <= 1
        assert abs(int((labels[val] == digit).sum()) - 0.1 * members) <= 1
    assert torch.equal(stratified_split(labels, 0.1, 0.2, seed=3)[2], test)
    assert not torch.equal(stratified_split(labels, 0.1, 0.2, seed=4)[2], test)
    with pytest.raises(DigitsError, match="3 images leave a split empty"):
        stratified_split(labels[:3], 0.1, 0.2, seed=3)


def test_unreadable_files_are_named_or_skipped_and_counted(photos: Path, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    write_digit_folder(root, per_class=3)
    bad = root / "4" / "cut.png"
    bad.write_bytes((photos / "4" / "photo0.png").read_bytes()[:100])
    with pytest.raises(DigitsError, match=rf"^{bad}: .*data.skip_bad=true"):
        folder_data(tmp_path, root=str(root)).prepare_data()
    data = folder_data(tmp_path, root=str(root), skip_bad=True, val_fraction=0.1)
    with pytest.warns(UserWarning, match="left out 1 file"):
        data.setup()
    assert len(data.train_set) + len(data.val_set) + len(data.test_set) == 30


def test_an_empty_class_folder_is_named_in_a_warning(photos: Path, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    write_digit_folder(root, per_class=2)
    for path in (root / "7").iterdir():
        path.unlink()
    with pytest.warns(UserWarning, match=rf"{root / '7'}: no images, so digit 7 is not learned"):
        pairs = listed(str(root), None, "root")
    assert {label for _, label in pairs} == set(range(10)) - {7}


def test_a_folder_of_mixed_sizes_is_decoded_with_a_progress_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "mixed"  # 12 to 300 pixels square: each goes into the same 28x28 contract
    write_digit_folder(root, per_class=6, sizes=(12, 28, 64, 150, 300))
    monkeypatch.setattr(digits.data.prepared, "SHOW_PROGRESS_FROM", 50)  # 200 in use: kept small
    data = folder_data(tmp_path / "cache", root=str(root))
    data.prepare_data()
    assert "preparing 60 images" in capsys.readouterr().out
    data.setup()
    assert data.train_set.images.shape[1:] == (28, 28)
    assert data.training_images() + 12 + 12 == 60  # val and test: 0.2 each, stratified


def test_with_no_validation_every_image_but_the_test_trains_and_the_last_weights_are_tested(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = folder_data(tmp_path / "cache", root=str(photos), val_fraction=None)
    data.setup()
    assert (len(data.train_set), len(data.val_set), len(data.test_set)) == (96, 0, 24)
    run = RunDir(tmp_path / "run")  # a few examples per digit: nothing to choose a checkpoint by
    args = ["data=folder", f"data.root={photos}", f"data.cache_dir={tmp_path / 'cache'}",
            "data.val_fraction=null", "trainer.max_epochs=2", "logger=none",
            f"hydra.run.dir={run.path}"]  # fmt: skip
    assert run_entry_point("train", args, monkeypatch) == 0
    metrics = json.loads(run.metrics_file.read_text())
    assert metrics["test/images"] == 24 and "val/acc" not in metrics
    assert "best_checkpoint" not in metrics and run.last_checkpoint.is_file()
