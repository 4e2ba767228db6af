"""The table that ends a multirun: one row per job, sorted by validation accuracy.

`SweepSummary` is a Hydra callback (conf/hydra/default.yaml). It reads what every job left in its
directory, so it works with any launcher (basic, joblib, submitit) and lists failed jobs too.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from digits.runs.run_dir import RunDir, job_order

COLUMNS = ("job", "overrides", "status", "val_acc_best", "test_acc", "wall_time_s")


def jobs_in(sweep_dir: Path) -> list[RunDir]:
    jobs = [RunDir(p) for p in sweep_dir.iterdir() if RunDir(p).is_run()]
    return sorted(jobs, key=lambda job: job_order(job.path))


def job_row(job: RunDir, common: set[str]) -> dict[str, Any]:
    """One job's overrides (those not shared by every job), status and final metrics."""
    varying = [o for o in job.overrides() if o not in common]
    row: dict[str, Any] = {"job": job.path.name, "overrides": " ".join(varying)}
    metrics = job.metrics()
    if metrics is not None:
        return row | {
            "status": "ok",
            "val_acc_best": metrics.get("val/acc_best"),
            "test_acc": metrics.get("test/acc"),
            "wall_time_s": metrics.get("wall_time_s"),
        }
    reason = job.error_file.read_text().strip() if job.error_file.is_file() else "no metrics.json"
    failed = {"status": f"failed: {reason}", "val_acc_best": None, "test_acc": None}
    return row | failed | {"wall_time_s": None}


def sort_key(row: dict[str, Any]) -> float:
    value = row["val_acc_best"]
    return -value if isinstance(value, float) and not math.isnan(value) else math.inf


def summarize(sweep_dir: Path) -> list[dict[str, Any]]:
    """Write summary.md and summary.csv into the sweep directory; return the rows, best first."""
    jobs = jobs_in(sweep_dir)
    if not jobs:
        return []
    shared = set.intersection(*(set(job.overrides()) for job in jobs)) if len(jobs) > 1 else set()
    rows = sorted((job_row(job, shared) for job in jobs), key=sort_key)
    with (sweep_dir / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(shown(row[c]) for c in COLUMNS) + " |" for row in rows]
    (sweep_dir / "summary.md").write_text("\n".join(lines) + "\n")
    return rows


def shown(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


class SweepSummary(Callback):
    """Print and save the comparison of a multirun's jobs when it ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = summarize(sweep_dir)
        table = Table(title=f"sweep {sweep_dir}", header_style="bold")
        for column in COLUMNS:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(shown(row[c]) for c in COLUMNS))
        console = Console()
        console.print(table)
        console.print(
            f"summary: {sweep_dir / 'summary.md'}, {sweep_dir / 'summary.csv'}", soft_wrap=True
        )
