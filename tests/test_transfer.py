"""Transfer learning: `init_from=` starts a new run from a trained model's weights (a run directory
means its best checkpoint), with a fresh optimizer and schedule; the run records its parent in its
manifest and checkpoints, and compare and the server's /model show it. Parts of the network frozen
(module.freeze) or tuned at a scale of the learning rate (module.body_lr_scale)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from conftest import FAST, run_entry_point
from digits.compare import compare
from digits.exported.formats import metadata
from digits.models.checkpoint import load_classifier, read_checkpoint
from digits.models.classifier import DigitClassifier
from digits.models.networks import parts_of
from digits.runs import RunDir
from digits.runs.run_dir import md5
from digits.serving.status import model_answer

# Steps so small the weights stay the parent's to float precision: what was loaded is what is saved.
STILL = [*FAST, "trainer.max_epochs=1", "trainer.limit_train_batches=1", "optimizer.lr=1e-12",
         "logger=none"]  # fmt: skip


def net_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = read_checkpoint(checkpoint)["state_dict"]
    return {key: value for key, value in state.items() if key.startswith("net.")}


def test_a_run_starts_from_its_parent_s_weights_and_records_it(
    trained_run: Path, data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data_root))
    parent = RunDir(trained_run)
    child = RunDir(tmp_path / "child")
    args = [f"init_from={parent.path}", "model=mlp", *STILL, f"hydra.run.dir={child.path}"]
    assert run_entry_point("train", args, monkeypatch) == 0
    best = parent.best_checkpoint()
    recorded = json.loads(child.manifest_file.read_text())["parent"]
    assert recorded["checkpoint"] == str(best.resolve()) and recorded["md5"] == md5(best)
    assert recorded["run"] == str(parent.path.resolve())
    saved = child.best_checkpoint()
    theirs, ours = net_weights(best), net_weights(saved)
    assert theirs.keys() == ours.keys()
    assert all(torch.allclose(theirs[key], ours[key], atol=1e-6) for key in theirs)
    # The lineage travels with the checkpoint: into exports' metadata, /model, compare.
    served = model_answer(metadata(load_classifier(saved), saved), str(saved), "mnist")
    assert served.parent == str(best.resolve())  # GET /model's answer
    rows = {row["run"]: row for row in compare([str(parent.path), str(child.path)], tmp_path / "c")}
    assert (rows["child"]["parent"], rows[parent.path.name]["parent"]) == (parent.path.name, "-")
    # A fresh start: the epoch counter and the optimizer are the child's own.
    assert json.loads(child.metrics_file.read_text())["epochs"] == 1


def test_layers_that_do_not_fit_are_refused_or_left_fresh_with_init_strict_false(
    trained_run: Path, data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data_root))
    monkeypatch.chdir(tmp_path)
    best = RunDir(trained_run).best_checkpoint()
    hidden = read_checkpoint(best)["hyper_parameters"]["net"]["hidden"]
    wider = ",".join(str(size) for size in [hidden[0] * 2, *hidden[1:]])  # 1. and 4. change
    args = [f"init_from={trained_run}", "model=mlp", f"model.hidden=[{wider}]", *STILL]
    assert run_entry_point("train", args, monkeypatch) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: init_from={trained_run}: its MLP network does not fit")
    assert "1.weight" in line and "init_strict=false" in line
    assert not (tmp_path / "outputs").exists()
    child = RunDir(tmp_path / "partial")
    args += ["init_strict=false", f"hydra.run.dir={child.path}"]
    assert run_entry_point("train", args, monkeypatch) == 0
    parent = read_checkpoint(child.best_checkpoint())["parent"]
    assert {"1.weight", "1.bias", "4.weight"} == set(parent["not_loaded"])
    theirs, ours = net_weights(best), net_weights(child.best_checkpoint())
    last = max(ours, key=lambda key: int(key.split(".")[1]))  # the output layer: loaded
    assert torch.allclose(theirs[last], ours[last], atol=1e-6)


class BatchNormModes(L.Callback):
    """Whether the network's batch-norm layers were in training mode, at each training step."""

    def __init__(self) -> None:
        self.training: list[bool] = []

    def on_train_batch_start(
        self, trainer: L.Trainer, module: L.LightningModule, *_: object
    ) -> None:
        layers = [m for m in module.net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        self.training.append(any(layer.training for layer in layers))


def fitted(
    make_cfg, *overrides: str, epochs: int = 1
) -> tuple[DigitClassifier, DigitClassifier, list[bool]]:
    """A LeNet with batch norm (all of it in its features) before and after `epochs` epochs of 4
    steps, and whether its batch norm trained at each step."""
    cfg = make_cfg("model=lenet", "model.batch_norm=true", "logger=none", "callbacks=none",
                   *overrides)  # fmt: skip
    datamodule = instantiate(cfg.data)
    module = DigitClassifier(cfg.model, cfg.optimizer, None, **cfg.module)
    before, modes = copy.deepcopy(module), BatchNormModes()
    trainer = instantiate(cfg.trainer, max_epochs=epochs, limit_train_batches=4, callbacks=[modes],
                          limit_val_batches=0, enable_checkpointing=False, logger=False)  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    return before, module, modes.training


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Every weight and buffer (batch-norm statistics included) equal."""
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


def test_frozen_parts_keep_their_weights_and_batch_norm_in_inference_mode(make_cfg) -> None:
    before, after, training = fitted(make_cfg, "module.freeze=[features]")
    assert same(parts_of(before.net)["features"], parts_of(after.net)["features"])
    assert not same(parts_of(before.net)["head"], parts_of(after.net)["head"])
    assert training == [False] * 4  # normalised by the statistics it has, not the batch's
    # Unfrozen from the second epoch: the features train then, batch norm in training mode.
    overrides = ("module.freeze=[features]", "module.unfreeze_at_epoch=1")
    before, after, training = fitted(make_cfg, *overrides, epochs=2)
    assert training == [False] * 4 + [True] * 4
    assert not same(parts_of(before.net)["features"], parts_of(after.net)["features"])


def test_the_body_learns_at_its_own_scale_of_the_learning_rate(make_cfg) -> None:
    cfg = make_cfg("model=cnn", "module.body_lr_scale=0.1", "optimizer.lr=0.002",
                   "scheduler=onecycle", "scheduler.max_lr=0.01", "scheduler.total_steps=10")  # fmt: skip
    module = DigitClassifier(cfg.model, cfg.optimizer, cfg.scheduler, **cfg.module)
    configured = module.configure_optimizers()
    body, head = configured["optimizer"].param_groups
    assert {id(p) for p in head["params"]} == {
        id(p) for p in parts_of(module.net)["head"].parameters()
    }
    assert len(body["params"]) + len(head["params"]) == len(list(module.net.parameters()))
    peaks = [group["max_lr"] for group in configured["optimizer"].param_groups]  # set by OneCycleLR
    assert peaks == pytest.approx([0.001, 0.01])
