"""What a search leaves in its sweep directory: every trial of the study (state, parameters, value),
best first; the command that reproduces the best trial; Optuna's plots of the study."""

from __future__ import annotations

import logging
import math
import shlex
import warnings
from pathlib import Path
from typing import Any

import matplotlib
import optuna
import yaml
from optuna.importance import PedAnovaImportanceEvaluator
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from digits.atomic import save_figure, write_text
from digits.runs.comparison import INTERVAL, metric_columns
from digits.runs.run_dir import RunDir, SweepDir
from digits.search.study import StudyRef, counted

log = logging.getLogger(__name__)

STATE_ORDER = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)


def study_rows(study: Study, sweep: SweepDir) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and one row per trial of the study: finished ones by value (pruned ones by their
    last reported value), then failed (interrupted ones too, with their reason, though their rerun
    counts instead), then unfinished. A job in this sweep is named by its folder, one of an earlier
    run of the study by its path."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: _rank(t, study.direction))
    params = list(dict.fromkeys(name for t in trials for name in t.params))
    columns = ["trial", "state", "value", *params, "epochs", "test_acc", *INTERVAL, "time_s", "job",
               "reason"]  # fmt: skip
    return columns, [_row(t, params, sweep) for t in trials]


def _rank(trial: FrozenTrial, direction: StudyDirection) -> tuple[int, float]:
    state = STATE_ORDER.index(trial.state) if trial.state in STATE_ORDER else len(STATE_ORDER)
    value = _value(trial)
    if value is None or math.isnan(value):
        return state, math.inf
    return state, -value if direction == StudyDirection.MAXIMIZE else value


def _value(trial: FrozenTrial) -> float | None:
    if trial.state == TrialState.PRUNED and trial.intermediate_values:
        return trial.intermediate_values[max(trial.intermediate_values)]
    return trial.value


def _row(trial: FrozenTrial, params: list[str], sweep: SweepDir) -> dict[str, Any]:
    job_dir = trial.user_attrs.get("job_dir")
    job = RunDir(Path(job_dir)) if job_dir else None
    metrics = (job.metrics() if job else None) or {}
    seconds = trial.duration.total_seconds() if trial.duration else None
    failed = trial.state == TrialState.FAIL
    return {
        "trial": trial.number,
        "state": trial.state.name.lower(),
        "value": _value(trial),
        **{name: trial.params.get(name) for name in params},
        "epochs": len(trial.intermediate_values) or metrics.get("epochs"),
        **metric_columns(metrics, {"test_acc": "test/acc"}),  # with its interval
        "time_s": f"{seconds:.1f}" if seconds is not None else None,
        "job": _job_name(job.path, sweep) if job else None,
        "reason": trial.user_attrs.get("fail_reason") if failed else None,
    }


def _job_name(path: Path, sweep: SweepDir) -> str:
    return path.name if path.parent == sweep.path else str(path)


def best_command(trial: FrozenTrial) -> str:
    """The command that reruns the best trial alone (hydra.mode=RUN: one run, not a search)."""
    overrides = [*trial.user_attrs.get("overrides", []), "hydra.mode=RUN"]
    return "python -m digits.train " + " ".join(shlex.quote(o) for o in overrides)


def write_best(sweep: SweepDir, study: Study, ref: StudyRef, metric: str) -> str | None:
    """optimization_results.yaml: the best trial, its value and the command reproducing it."""
    finished = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not finished:
        return None
    best = study.best_trial
    command = best_command(best)
    result = {
        "study": ref.name,
        "storage": ref.storage,
        "metric": metric,
        "direction": study.direction.name.lower(),
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
        "command": command,
        "trials": {s.name.lower(): sum(t.state == s for t in counted(study)) for s in STATE_ORDER},
    }
    write_text(sweep.best_file, yaml.safe_dump(result, sort_keys=False), "the best trial")
    return command


PLOTS = {
    "optimization_history": lambda study: optuna.visualization.matplotlib.plot_optimization_history(
        study
    ),
    "intermediate_values": lambda study: optuna.visualization.matplotlib.plot_intermediate_values(
        study
    ),
    # PED-ANOVA: Optuna's importance evaluator without scikit-learn (fANOVA needs it).
    "param_importances": lambda study: optuna.visualization.matplotlib.plot_param_importances(
        study, evaluator=PedAnovaImportanceEvaluator()
    ),
}


def save_plots(sweep: SweepDir, study: Study) -> list[str]:
    """Optuna's plots of the study as PNG files; those the study cannot make yet (e.g. importances
    before two trials finished) are skipped with a note in the log."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    saved = []
    for name, plot in PLOTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the matplotlib backend is marked experimental
                axes = plot(study)
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            log.info("no %s plot: %s", name, error)
            continue
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
        save_figure(figure, sweep.plot(name), "the search plot", dpi=110, bbox_inches="tight")
        plt.close(figure)
        saved.append(name)
    return saved
