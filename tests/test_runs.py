"""The run directory type: where a run keeps what, and which checkpoint is its best."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from conftest import FAST, run_cli
from digits.runs import RunDir, runs_in


def test_configs_reach_run_paths_through_the_run_resolver(make_cfg) -> None:
    cfg = make_cfg()
    run = RunDir(Path(cfg.paths.output_dir))
    assert cfg.callbacks.model_checkpoint.dirpath == str(run.checkpoints)
    assert cfg.callbacks.last_checkpoint.run_dir == str(run.path)


def test_best_checkpoint_is_the_recorded_one_not_the_newest(
    trained_run: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "moved-run"
    shutil.copytree(trained_run, copy)
    run = RunDir(copy)
    recorded = Path(run.metrics()["best_checkpoint"]).name
    newer = run.checkpoints / "epoch009-val_acc0.0001.ckpt"
    shutil.copy(run.last_checkpoint, newer)
    later = newer.stat().st_mtime + 100
    os.utime(newer, (later, later))
    # The copy's own file, found by the recorded name, whatever is newer.
    assert run.best_checkpoint() == run.checkpoints / recorded
    assert run.checkpoint("best") == run.checkpoints / recorded
    assert run.checkpoint("last") == run.last_checkpoint
    # A run that did not finish has no metrics.json: last.ckpt holds ModelCheckpoint's record.
    run.metrics_file.unlink()
    assert run.best_checkpoint() == run.checkpoints / recorded


def test_a_checkpoint_knows_its_run_and_a_multirun_lists_its_jobs(
    trained_run: Path, tmp_path: Path
) -> None:
    run = RunDir(trained_run)
    assert RunDir.of_checkpoint(run.last_checkpoint) == run
    assert RunDir.of_checkpoint(tmp_path / "loose.ckpt") is None
    assert run.evaluation("test") == trained_run / "evaluation"
    assert run.evaluation("val") == trained_run / "evaluation_val"
    assert run.evaluation("test", tta=1) == trained_run / "evaluation_tta1"
    assert run.evaluation("val", tta=2) == trained_run / "evaluation_val_tta2"
    assert "model=mlp" in run.overrides()
    sweep = tmp_path / "sweep"
    for job in ("10", "2", "0"):
        shutil.copytree(trained_run, sweep / job)
    assert [job.path.name for job in runs_in(sweep)] == ["0", "2", "10"]
    assert runs_in(trained_run) == [run]


@pytest.mark.slow
def test_last_checkpoint_is_current_every_epoch_and_records_the_best(
    tmp_path: Path, data_root: Path
) -> None:
    # With this learning rate val/acc cannot improve after the first epoch, so Lightning's own
    # save_last would leave last.ckpt at epoch 0.
    result = run_cli(
        "digits.train",
        *FAST,
        "model=mlp",
        "optimizer=sgd",
        "optimizer.lr=1e-12",
        "trainer.max_epochs=3",
        "logger=none",
        "hydra.run.dir=outputs/run",
        cwd=tmp_path,
        data_root=data_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = RunDir(tmp_path / "outputs" / "run")
    metrics = json.loads(run.metrics_file.read_text())
    last = torch.load(run.last_checkpoint, weights_only=True)
    assert last["global_step"] == metrics["global_step"]
    assert Path(metrics["best_checkpoint"]).name.startswith("epoch000")
    (state,) = [s for k, s in last["callbacks"].items() if "'monitor': 'val/acc'" in k]
    assert state["best_model_path"] == metrics["best_checkpoint"]
