"""`digits.adapt`: a trained model adapted to new images without their labels, in a run of its own
that records the model it came from and the method. AdaBN re-estimates the batch-norm statistics
(weights untouched); self-training learns its own confident answers, never the set's labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from digit_files import write_digit_folder, write_usps  # tools/digit_files.py

from conftest import FAST, run_entry_point
from digits.adaptation import SelfTraining
from digits.data.unlabelled import UNLABELLED, UnlabelledDataModule
from digits.data.usps import USPSDataModule
from digits.models.checkpoint import load_classifier, read_checkpoint
from digits.runs import RunDir
from digits.runs.comparison import rows_of
from digits.runs.run_dir import md5

# A USPS-format target (the test split held out of its training digits), small and quick.
TARGET = ["data=usps", "data.download=false", "data.test_fraction=0.3", "data.batch_size=32",
          "trainer.accelerator=cpu", "logger=none"]  # fmt: skip


@pytest.fixture(scope="module")
def usps_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("usps")
    write_usps(root, per_class=12)
    return root


@pytest.fixture(scope="module")
def batch_norm_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LeNet with batch norm trained a little on the synthetic MNIST."""
    run = tmp_path_factory.mktemp("bn") / "run"
    args = [*FAST, "model=lenet", "model.batch_norm=true", "model.channels=[4,8]",
            "trainer.max_epochs=1", "logger=none", f"hydra.run.dir={run}"]  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIGITS_DATA_DIR", str(data_root))
        assert run_entry_point("train", args, patch) == 0
    return run


def adapted(
    parent: Path, usps_root: Path, where: Path, patch: pytest.MonkeyPatch, *more: str
) -> RunDir:
    run = RunDir(where)
    args = [f"ckpt_path={parent}", *TARGET, f"data.root={usps_root}", f"hydra.run.dir={run.path}"]
    assert run_entry_point("adapt", [*args, *more], patch) == 0
    return run


def test_adabn_re_estimates_batch_norm_statistics_on_the_target_and_changes_no_weight(
    batch_norm_run: Path, usps_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = adapted(batch_norm_run, usps_root, tmp_path / "adabn", monkeypatch, "adaptation=adabn")
    parent = read_checkpoint(RunDir(batch_norm_run).best_checkpoint())["state_dict"]
    child = read_checkpoint(run.last_checkpoint)["state_dict"]
    assert child.keys() == parent.keys()
    learned = [
        k for k in parent if k.startswith("net.") and "running" not in k and "num_batches" not in k
    ]
    assert all(torch.equal(parent[k], child[k]) for k in learned)  # weights as trained
    # The first batch norm's mean is now the target's: its conv's output averaged over the
    # target's training images (the plain average of batch means; batches of 32 but the last).
    model = load_classifier(run.last_checkpoint)
    data = USPSDataModule(root=str(usps_root), download=False, val_fraction=0.1, test_fraction=0.3,
                          split_seed=42, batch_size=32, num_workers=0, pin_memory=False,
                          augment=None, on_device="auto")  # fmt: skip
    images = data.splits()["train"][0].unsqueeze(1).float() / 255
    with torch.no_grad():
        conv_out = model.net[0](model.normalize(images))
    target_mean = conv_out.mean(dim=(0, 2, 3))
    assert torch.allclose(child["net.1.running_mean"], target_mean, atol=0.02)
    assert not torch.allclose(parent["net.1.running_mean"], target_mean, atol=0.02)
    metrics = json.loads(run.metrics_file.read_text())
    assert metrics["method"] == "adabn" and metrics["global_step"] == 0


def test_self_training_records_its_parent_and_method_and_tests_before_and_after(
    trained_run: Path, usps_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = adapted(trained_run, usps_root, tmp_path / "st", monkeypatch,
                  "trainer.max_epochs=2", "adaptation.threshold=0.5")  # fmt: skip
    best = RunDir(trained_run).best_checkpoint()
    parent = json.loads(run.manifest_file.read_text())["parent"]
    assert parent["checkpoint"] == str(best.resolve()) and parent["md5"] == md5(best)
    assert parent["method"] == "self_training"
    assert load_classifier(run.last_checkpoint).parent == parent  # in every checkpoint
    metrics = json.loads(run.metrics_file.read_text())
    images = metrics["test/images"]
    assert metrics["adapt/against_before"]["images"] == images
    before = round(metrics["test/acc_before"] * images)
    test = metrics["adapt/against_before"]
    assert metrics["test/correct"] - before == test["b_only"] - test["a_only"]
    assert 0 < metrics["adapt/taken"] <= 1 and "discordant images" in metrics["verdict"]
    weights = read_checkpoint(run.last_checkpoint)["state_dict"]
    parent_weights = read_checkpoint(best)["state_dict"]
    assert any(
        not torch.equal(weights[k], parent_weights[k]) for k in weights if k.startswith("net.")
    )
    # An adapted model is a model like any: evaluated by its run, compared with its lineage.
    assert (
        run_entry_point("evaluate", [f"run={run.path}", "trainer.accelerator=cpu"], monkeypatch)
        == 0
    )
    _, rows = rows_of([run])  # digits.compare's rows
    assert rows[0]["parent"] == trained_run.name


def test_self_training_never_learns_the_target_s_labels(trained_run: Path) -> None:
    """The same images with other labels give the same loss: labels only count right answers."""
    checkpoint = read_checkpoint(RunDir(trained_run).best_checkpoint())
    model = SelfTraining(threshold=0.1, weak={"translate": 0.1}, strong={"rotation": 15},
                         **checkpoint["hyper_parameters"])  # fmt: skip
    model.load_state_dict(checkpoint["state_dict"], strict=False)
    images = torch.rand(16, 1, 28, 28)
    losses = []
    for labels in (torch.zeros(16, dtype=torch.long), torch.arange(16) % 10):
        torch.manual_seed(0)
        losses.append(model.training_step((images, labels), 0))
    assert torch.equal(losses[0], losses[1]) and losses[0] > 0


def test_a_folder_of_unlabelled_images_is_adapted_to_and_left_unscored(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = tmp_path / "scans"
    write_digit_folder(scans / "batch1", per_class=3)  # subfolders too; their names are no labels
    monkeypatch.setenv("DIGITS_CACHE_DIR", str(tmp_path / "cache"))
    run = RunDir(tmp_path / "adapted")
    args = [f"ckpt_path={trained_run}", f"data.root={scans}", "trainer.accelerator=cpu",
            "logger=none", "trainer.max_epochs=1", f"hydra.run.dir={run.path}"]  # fmt: skip
    assert run_entry_point("adapt", args, monkeypatch) == 0
    metrics = json.loads(run.metrics_file.read_text())
    assert "test/acc" not in metrics and "adapt/pseudo_label_acc" not in metrics
    assert metrics["verdict"].startswith("not scored") and 0 <= metrics["adapt/taken"] <= 1
    data = json.loads(run.manifest_file.read_text())["data"]
    assert data["images"] == 30 and data["root"] == str(scans.resolve())
    assert load_classifier(run.last_checkpoint).parent["method"] == "self_training"
    module = UnlabelledDataModule(root=str(scans), preprocess="mnist", cache_dir=str(tmp_path / "cache"),
                                  skip_bad=False, batch_size=8, num_workers=0, pin_memory=False,
                                  augment=None, on_device="auto")  # fmt: skip
    images, labels = module.images()
    assert images.shape == (30, 28, 28) and bool((labels == UNLABELLED).all())
