"""Experiments, multiruns and their summary table, and the joblib/submitit launchers (searches:
test_search.py)."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

from conftest import FAST, run_cli
from digits.config import config_dir
from digits.training.fit import run

EXPERIMENTS = sorted(p.stem for p in (Path(config_dir()) / "experiment").glob("*.yaml"))
FEW_STEPS = [*FAST, "trainer.max_epochs=1", "trainer.limit_train_batches=3"]


def sweep_dir(cwd: Path) -> Path:
    (sweep,) = (cwd / "outputs" / "multiruns").iterdir()
    return sweep


def summary_rows(sweep: Path) -> list[dict[str, str]]:
    assert (sweep / "summary.md").is_file()
    with (sweep / "summary.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_trains_a_few_steps(make_cfg, experiment: str) -> None:
    cfg = make_cfg(
        f"experiment={experiment}",
        "trainer.max_steps=3",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "logger=none",
    )
    assert cfg.task_name == experiment
    metrics = run(cfg)
    assert metrics["global_step"] == 3 and 0 <= metrics["test/acc"] <= 1


def test_tutorial_experiments_match_the_tutorials(make_cfg) -> None:
    t0 = make_cfg("experiment=t0_mlp")
    assert (t0.model.hidden, t0.optimizer.lr, t0.trainer.max_epochs) == ([128, 84], 0.001, 50)
    t1 = make_cfg("experiment=t1_dropout_cnn")
    assert (t1.seed, t1.data.batch_size, t1.model.kernel_size, t1.model.padding) == (2019, 32, 5, 0)
    t3 = make_cfg("experiment=t3_cnn")
    assert (t3.module.mean, t3.module.std, t3.model.hidden) == (0.5, 0.5, 1024)


@pytest.mark.slow
def test_multirun_summary_lists_jobs_by_val_accuracy_and_failed_ones(
    tmp_path: Path, data_root: Path
) -> None:
    result = run_cli(
        "digits.train",
        "-m",
        *FEW_STEPS,
        "model=mlp",
        # 1e9 passes the up-front checks but diverges in the first steps.
        "optimizer.lr=0.001,1000000000.0",
        "callbacks.stop_on_divergence.every_n_steps=1",
        "logger=none",
        cwd=tmp_path,
        data_root=data_root,
    )
    assert result.returncode == 1, result.stderr[-3000:]  # after the summary
    rows = summary_rows(sweep_dir(tmp_path))
    # Only what varies between jobs is shown, best validation accuracy first, failures last.
    assert [row["overrides"] for row in rows] == ["optimizer.lr=0.001", "optimizer.lr=1000000000.0"]
    assert rows[0]["status"] == "ok" and 0 <= float(rows[0]["val_acc_best"]) <= 1
    assert rows[1]["status"].startswith("failed") and "training diverged" in rows[1]["status"]
    manifests = [
        json.loads((sweep_dir(tmp_path) / job / "manifest.json").read_text()) for job in ("0", "1")
    ]
    assert [m["status"] for m in manifests] == ["completed", "failed"]
    assert "training diverged" in manifests[1]["error"] and manifests[1]["exit_status"] == 2
    assert "sweep" in result.stdout and "failed" in result.stdout


@pytest.mark.slow
def test_a_seed_multirun_is_summarised_as_one_group_then_its_runs(
    tmp_path: Path, data_root: Path
) -> None:
    result = run_cli(
        "digits.train", "-m", *FEW_STEPS, "model=mlp", "seed=1,2,3", "logger=none",
        cwd=tmp_path, data_root=data_root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = sweep_dir(tmp_path)
    rows = summary_rows(sweep)
    assert sorted(row["overrides"] for row in rows) == ["seed=1", "seed=2", "seed=3"]
    (group,) = list(csv.DictReader((sweep / "groups.csv").open()))
    tested = [float(row["test_acc"]) for row in rows]
    assert int(group["n"]) == 3
    assert float(group["test_acc"]) == pytest.approx(statistics.mean(tested), abs=1e-6)
    assert float(group["test_acc_sd"]) == pytest.approx(statistics.stdev(tested), rel=1e-4)
    assert float(group["test_acc_low"]) < float(group["test_acc"]) < float(group["test_acc_high"])
    summary = (sweep / "summary.md").read_text()
    assert summary.index("## Groups of replicates") < summary.index("## Runs")
    assert "groups of replicates" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_and_cluster_launchers_run_jobs(
    tmp_path: Path, data_root: Path, launcher: str
) -> None:
    result = run_cli(
        "digits.train",
        "-m",
        f"hydra/launcher={launcher}",
        *FEW_STEPS,
        "model=mlp,lenet",
        "logger=none",
        cwd=tmp_path,
        data_root=data_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = summary_rows(sweep_dir(tmp_path))
    assert sorted(row["overrides"] for row in rows) == ["model=lenet", "model=mlp"]
    assert all(row["status"] == "ok" for row in rows)


def test_console_tables_fit_80_columns_breaking_between_words(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 46: the sweep summary wrapped mid-word when stdout was not a terminal ("override s",
    "val_acc_ best"). Columns that do not fit are left out and named; the files keep them all."""
    from digits.presentation.tables import print_table
    from digits.search.summary import SHOWN_COLUMNS

    monkeypatch.delenv("COLUMNS", raising=False)
    overrides = "optimizer.lr=0.003 data.batch_size=128 model=cnn scheduler=onecycle"
    rows = [
        {"job": str(job), "overrides": overrides, "status": "failed: the loss diverged at step 12",
         "val_acc_best": 0.98123, "test_acc": 0.9812, "test_acc_95%": "0.9785-0.9837",
         "wall_time_s": 123.4}
        for job in range(3)
    ]  # fmt: skip
    print_table("sweep", SHOWN_COLUMNS, rows)
    shown = capsys.readouterr().out
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80
    words = {word for line in lines for word in line.replace("│", " ").replace("┃", " ").split()}
    for word in [*overrides.split(), "diverged", "0.9785-0.9837", "val", "acc", "best"]:
        assert word in words, word
    assert "wall time s" not in shown and "left out to fit 80 columns: wall_time_s" in shown

    wide = [{"job": "0", "overrides": overrides}]
    print_table("sweep", ["job", "overrides"], wide)
    assert overrides in capsys.readouterr().out  # one line where it fits
