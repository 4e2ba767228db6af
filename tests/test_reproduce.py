"""reproduce=<run>: the same overrides into a new directory, metrics side by side, differences named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FAST, run_cli
from digits.runs import RunDir

DETERMINISTIC = [
    *FAST,
    "model=lenet",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=6",
    "trainer.deterministic=true",
    "seed=3",
    "logger=none",
]


def new_runs(cwd: Path) -> list[RunDir]:
    return [RunDir(p) for p in sorted((cwd / "outputs" / "runs").iterdir()) if p.name != "original"]


@pytest.mark.slow
def test_reproduce_reruns_to_the_same_metrics_and_names_what_differs(
    tmp_path: Path, data_root: Path
) -> None:
    args = [*DETERMINISTIC, "hydra.run.dir=outputs/runs/original"]
    assert run_cli("digits.train", *args, cwd=tmp_path, data_root=data_root).returncode == 0
    original = RunDir(tmp_path / "outputs" / "runs" / "original")

    again = run_cli("digits.train", f"reproduce={original.path}", cwd=tmp_path, data_root=data_root)
    assert again.returncode == 0, again.stderr[-3000:]
    (rerun,) = new_runs(tmp_path)
    assert rerun.overrides()[:-1] == original.overrides()  # then reproduce=<original>
    report = json.loads(rerun.reproduction_file.read_text())
    assert report["same"] is True and report["warnings"] == []
    for name in ("val/acc_best", "test/acc", "test/loss", "train/loss_epoch"):
        assert report["metrics"][name]["difference"] == 0, name
        assert report["metrics"][name]["now"] == original.metrics()[name]
    assert "are the same as the original's" in again.stdout

    # Another torch then, and a setting changed now: both named, and the metrics differ.
    manifest = original.manifest()
    manifest["packages"]["torch"] = "0.0"
    original.manifest_file.write_text(json.dumps(manifest))
    changed = run_cli(
        "digits.train",
        f"reproduce={original.path}",
        "trainer.limit_train_batches=3",
        cwd=tmp_path,
        data_root=data_root,
    )
    assert changed.returncode == 0, changed.stderr[-3000:]
    report = json.loads(new_runs(tmp_path)[-1].reproduction_file.read_text())
    assert report["same"] is False
    assert report["warnings"] == [
        f"package torch: 0.0 then, {manifest_torch(rerun)} now",
        "setting trainer.limit_train_batches: 6 then, 3 now",
    ]
    assert "warning: package torch: 0.0 then" in changed.stdout


def manifest_torch(run: RunDir) -> str:
    return run.manifest()["packages"]["torch"]
