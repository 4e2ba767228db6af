"""The table that ends a multirun: one row per job (or per trial of a search), best first, and
before it, when jobs differ only in their seed or fold, one row per configuration: n, mean, sd
and 95% interval of each accuracy.

`SweepSummary` is a Hydra callback (conf/hydra/default.yaml). A grid sweep's table is read from
what every job left in its directory, so it works with any launcher (basic, joblib, submitit) and
lists failed jobs too; a search's comes from its Optuna study (digits.search.trials).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from digits.atomic import write_text
from digits.presentation.tables import (
    INTERVAL_COLUMN,
    markdown_table,
    print_groups,
    print_table,
    save_csv,
    save_table,
    with_interval_column,
)
from digits.runs.comparison import GROUP_COLUMNS, best_first, grouped, metric_columns, sort_key
from digits.runs.run_dir import RunDir, SweepDir

if TYPE_CHECKING:
    from digits.search.study import StudyRef

COLUMNS = ["job", "overrides", "status", "val_acc_best", "test_acc", "test_acc_low",
           "test_acc_high", "wall_time_s"]  # fmt: skip
# On the console: the interval in one column.
SHOWN_COLUMNS = [*COLUMNS[:5], INTERVAL_COLUMN, "wall_time_s"]
METRICS = {"val_acc_best": "val/acc_best", "test_acc": "test/acc", "wall_time_s": "wall_time_s"}


def job_row(job: RunDir, common: set[str]) -> dict[str, Any]:
    """One job's overrides (those not shared by every job), status and final metrics."""
    varying = [o for o in job.overrides() if o not in common]
    row: dict[str, Any] = {"job": job.path.name, "overrides": " ".join(varying)}
    metrics = job.metrics()
    if metrics is not None:
        return row | {"status": "ok"} | metric_columns(metrics, METRICS)
    reason = job.error_file.read_text().strip() if job.error_file.is_file() else "no metrics.json"
    return row | {"status": f"failed: {reason}"} | metric_columns({}, METRICS)


def job_rows(sweep: SweepDir) -> list[dict[str, Any]]:
    """A grid sweep's jobs, best validation accuracy first."""
    jobs = sweep.jobs()
    if not jobs:
        return []
    shared = set.intersection(*(set(job.overrides()) for job in jobs)) if len(jobs) > 1 else set()
    return sorted((job_row(job, shared) for job in jobs), key=sort_key)


def summarize(sweep_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Write summary.md and summary.csv of a grid sweep, and groups.csv when jobs differ only in
    seed or fold; return the jobs' rows and the groups' rows, best first."""
    sweep = SweepDir(sweep_dir)
    rows = job_rows(sweep)
    if not rows:
        return [], []
    groups = best_first(grouped(sweep.jobs()))[1]
    groups = groups if any(group["n"] > 1 for group in groups) else []
    save_csv(sweep.summary_csv, COLUMNS, rows)
    markdown = markdown_table(COLUMNS, rows)
    if groups:
        save_csv(sweep.groups_csv, GROUP_COLUMNS, groups)
        markdown = (
            "## Groups of replicates (runs that differ only in seed or fold)\n\n"
            + markdown_table(GROUP_COLUMNS, groups)
            + "\n## Runs\n\n"
            + markdown
        )
    write_text(sweep.summary_md, markdown, "the sweep summary")
    return rows, groups


class SweepSummary(Callback):
    """Print and save the comparison of a multirun's jobs, or of a search's trials, when it ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = SweepDir(Path(config.hydra.sweep.dir))
        if not sweep.path.is_dir():
            return
        from digits.search.study import StudyRef  # optuna loads only for a search

        ref = StudyRef.of_saved(sweep.path)
        if ref is not None:
            summarize_study(sweep, ref, config.get("optimized_metric", "value"))
            return
        rows, groups = summarize(sweep.path)
        console = print_table(f"sweep {sweep.path}", SHOWN_COLUMNS, with_interval_column(rows))
        if groups:
            print_groups(groups)
        saved = [sweep.summary_md, sweep.summary_csv, *([sweep.groups_csv] if groups else [])]
        console.print(f"summary: {', '.join(map(str, saved))}", soft_wrap=True)


def summarize_study(sweep: SweepDir, ref: StudyRef, metric: str) -> None:
    """A search's summary, its best trial's command and Optuna's plots, in the sweep directory."""
    from digits.search.trials import save_plots, study_rows, write_best

    study = ref.load()
    columns, rows = study_rows(study, sweep)
    save_table(sweep.summary_csv, sweep.summary_md, columns, rows)
    console = print_table(f"study {ref.name} ({metric}, {ref.storage})", columns, rows)
    command = write_best(sweep, study, ref, metric)
    if command:
        with sweep.summary_md.open("a") as handle:
            handle.write(f"\nThe best trial alone:\n\n    {command}\n")
        console.print(f"best trial, alone: {command}", soft_wrap=True)
    plots = save_plots(sweep, study)
    console.print(
        f"summary: {sweep.summary_md}, {sweep.summary_csv}, {sweep.best_file.name}; "
        f"plots: {', '.join(plots) or 'none yet'}; dashboard: optuna-dashboard {ref.storage}",
        soft_wrap=True,
    )
