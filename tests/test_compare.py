"""digits.compare: any runs side by side, their differing settings and final metrics."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from conftest import FAST, run_cli
from digits.compare import compare

FEW_STEPS = [
    *FAST,
    "model=mlp",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "logger=none",
]


@pytest.fixture(scope="module")
def two_runs(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    cwd = tmp_path_factory.mktemp("compare")
    for name, extra in (("a", []), ("b", ["optimizer.lr=0.01", "data.batch_size=32"])):
        args = [*FEW_STEPS, *extra, f"hydra.run.dir=outputs/runs/{name}"]
        result = run_cli("digits.train", *args, cwd=cwd, data_root=data_root)
        assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "outputs" / "runs" / "a", cwd / "outputs" / "runs" / "b"


def test_compare_lists_exactly_the_differing_settings_best_first(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_runs
    rows = compare([str(a), str(b)], tmp_path / "out")
    with (tmp_path / "out" / "comparison.csv").open() as handle:
        saved = list(csv.DictReader(handle))
    columns = list(saved[0])
    assert columns == [
        "run", "status", "data.batch_size", "optimizer.lr",
        "val_acc_best", "test_acc", "test_loss", "epochs", "train_time_s",
    ]  # fmt: skip
    by_run = {row["run"]: row for row in saved}
    assert (by_run["a"]["data.batch_size"], by_run["a"]["optimizer.lr"]) == ("64", "0.001")
    assert (by_run["b"]["data.batch_size"], by_run["b"]["optimizer.lr"]) == ("32", "0.01")
    assert [row["val_acc_best"] for row in rows] == sorted(
        (row["val_acc_best"] for row in rows), reverse=True
    )
    assert all(row["status"] == "completed" for row in rows)
    markdown = (tmp_path / "out" / "comparison.md").read_text().splitlines()
    assert markdown[0].startswith("| run | status | data.batch_size | optimizer.lr |")
    assert len(markdown) == 4
    assert (tmp_path / "out" / "accuracy_vs_time.png").read_bytes().startswith(b"\x89PNG")


def test_compare_takes_globs_and_multirun_folders(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_runs
    sweep = tmp_path / "multirun"
    shutil.copytree(a, sweep / "0")
    shutil.copytree(b, sweep / "1")
    rows = compare([str(a.parent / "*"), str(sweep)], tmp_path / "out")
    assert sorted(row["run"] for row in rows) == ["a", "b", "multirun/0", "multirun/1"]


def test_a_run_without_or_with_a_damaged_metrics_file_says_so(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_runs
    missing, damaged = tmp_path / "missing", tmp_path / "damaged"
    shutil.copytree(a, missing)
    shutil.copytree(b, damaged)
    (missing / "metrics.json").unlink()
    (damaged / "metrics.json").write_text("{cut off")
    rows = {
        row["run"]: row for row in compare([str(a), str(missing), str(damaged)], tmp_path / "o")
    }
    assert rows["missing"]["status"] == "no metrics.json"  # its manifest says completed
    assert rows["damaged"]["status"] == "damaged metrics.json"
    assert rows["a"]["status"] == "completed"
    assert rows["missing"]["val_acc_best"] is None and rows["damaged"]["test_acc"] is None
