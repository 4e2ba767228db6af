"""Runs side by side: the runs a command line names (run directories, multirun folders, globs), the
settings that differ between them, how each ended and its final metrics with the test accuracy's
interval, best validation accuracy first (digits.compare; a multirun's summary orders its rows the
same way); and runs that differ only in their seed or fold as one group of replicates, with the
mean, spread and interval of each accuracy."""

from __future__ import annotations

import glob
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from digits.errors import DigitsError
from digits.runs.differences import differing_settings
from digits.runs.run_dir import RunDir, SweepDir
from digits.uncertainty import accuracy_interval, cross_validated_interval, mean_interval

# Column: metrics.json key (the sweep summary's column names).
METRICS = {
    "val_acc_best": "val/acc_best",
    "test_acc": "test/acc",
    "test_loss": "test/loss",
    "epochs": "epochs",
    "train_time_s": "train_time_s",
}
INTERVAL = ["test_acc_low", "test_acc_high"]  # the 95% interval of test_acc (Wilson)
# Runs whose settings differ only in these replicate one configuration.
REPLICATES = ("seed", "data.fold", "data.split_seed")
# A group's columns: the mean of each accuracy over its runs, their standard deviation and the
# 95% interval of the mean (Student's t).
SPREAD = ["val_acc_best", "val_acc_best_sd", "val_acc_best_low", "val_acc_best_high",
          "test_acc", "test_acc_sd", "test_acc_low", "test_acc_high"]  # fmt: skip
# `interval`: which the test accuracy's is: t (Student's, of the mean over the group's runs) or
# wilson (a group of one: its run's, over the test images).
# A k-fold group's cross-validation estimate: its folds' final validation accuracy (each measured
# once, not val_acc_best's running maximum), with Nadeau and Bengio's corrected interval, and the
# accuracy pooled over every fold's validation images with its Wilson interval.
CROSS_VALIDATION = [
    "cv_val_acc",
    "cv_low",
    "cv_high",
    "cv_pooled",
    "cv_pooled_low",
    "cv_pooled_high",
]
GROUP_COLUMNS = ["configuration", "kind", "n", *SPREAD, "interval", *CROSS_VALIDATION,
                 "train_time_s"]  # fmt: skip


def expand(arguments: Sequence[str]) -> list[RunDir]:
    """The runs named: each run directory, every job of a multirun folder, globs expanded."""
    runs: list[RunDir] = []
    for argument in arguments:
        matches = sorted(glob.glob(argument)) if glob.has_magic(argument) else [argument]
        if not matches:
            raise DigitsError(f"{argument}: matches no folder")
        for match in map(Path, matches):
            if RunDir(match).is_run():
                runs.append(RunDir(match))
            elif match.is_dir() and SweepDir(match).jobs():
                runs.extend(SweepDir(match).jobs())
            elif not match.exists():
                raise DigitsError(f"{match}: no such folder")
            elif not glob.has_magic(argument):
                raise DigitsError(f"{match}: neither a run directory nor a multirun folder of runs")
    # By the folder itself: runs/mlp, ./runs/mlp and runs/../runs/mlp are one run.
    unique = list({run.path.resolve(): run for run in reversed(runs)}.values())[::-1]
    if len(unique) < 2:
        raise DigitsError(
            f"{' '.join(arguments)}: found {len(unique)} run(s); compare needs two or more"
        )
    return unique


def label(run: RunDir) -> str:
    """A run's name: its folder, with the multirun's for a job (`<sweep>/3`)."""
    return f"{run.path.parent.name}/{run.path.name}" if run.path.name.isdigit() else run.path.name


def rows_of(runs: list[RunDir]) -> tuple[list[str], list[dict[str, Any]]]:
    """A row per run: its status, the settings that differ between the runs (with `parent`, the
    model it started from, first, when any run has one), its metrics; best first."""
    settings = [run.settings() | {"parent": parent_of(run)} for run in runs]
    lineage = ["parent"] if any(setting["parent"] != "-" for setting in settings) else []
    keys = lineage + [key for key in differing_settings(settings) if key != "parent"]
    rows = []
    for run, setting in zip(runs, settings, strict=True):
        status, metrics = status_and_metrics(run)
        row = {"run": label(run), "status": status}
        row |= {key: setting.get(key, "-") for key in keys}
        row |= metric_columns(metrics, METRICS)
        rows.append(row)
    return keys, sorted(rows, key=sort_key)


def parent_of(run: RunDir) -> str:
    """The run (or checkpoint file) a run's training started from (init_from=), or "-"."""
    parent = run.manifest().get("parent") or {}
    source = parent.get("run") or parent.get("checkpoint")
    return Path(source).name if source else "-"


def metric_columns(metrics: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    """The columns' values from metrics.json, and the test accuracy's interval where recorded."""
    interval = metrics.get("test/acc_interval") or {}
    return {column: metrics.get(key) for column, key in columns.items()} | {
        "test_acc_low": interval.get("low"),
        "test_acc_high": interval.get("high"),
    }


def replicate_groups(settings: list[dict[str, str]]) -> list[tuple[str, list[int]]]:
    """The runs (their indices) grouped by every setting but the seed and the fold, each group
    named by the settings that set it apart (`model=cnn optimizer.lr=0.01`), in first-seen order."""
    keys = [key for key in differing_settings(settings) if key not in REPLICATES]
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, setting in enumerate(settings):
        groups.setdefault(tuple(setting.get(key, "None") for key in keys), []).append(index)
    names = [short_name(keys, settings[members[0]]) for members in groups.values()]
    if len(set(names)) < len(names):  # the short names do not tell two groups apart
        names = [full_name(keys, settings[members[0]]) for members in groups.values()]
    return [
        (name or "(all runs)", members)
        for name, members in zip(names, groups.values(), strict=True)
    ]


def full_name(keys: list[str], setting: dict[str, str]) -> str:
    return " ".join(f"{key.removeprefix('choices.')}={setting.get(key, 'None')}" for key in keys)


def short_name(keys: list[str], setting: dict[str, str]) -> str:
    """The group's settings in the user's words: an experiment stands for all it sets, a config
    group's option (`model=cnn`) for the keys it sets (model.*)."""
    if "choices.experiment" in keys:
        return full_name(["choices.experiment"], setting)
    chosen = tuple(key.removeprefix("choices.") + "." for key in keys if key.startswith("choices."))
    return full_name([key for key in keys if not key.startswith(chosen)], setting)


def replicate_kind(runs: list[RunDir]) -> str:
    """What a group's runs vary in: seeds (the training seed, or the split's: replicates), folds
    (k-fold cross-validation), folds and seeds (the same folds, several training seeds), repeated
    folds (k-fold repeated over split seeds: 5x2cv with data.folds=2), or nothing (one)."""
    settings = [run.settings() for run in runs]  # each run's .hydra/config.yaml, read once
    varied = {key for key in REPLICATES if len({each.get(key) for each in settings}) > 1}
    if "data.fold" not in varied:
        return "seeds" if varied else "one"
    if "data.split_seed" in varied:
        return "repeated folds"
    return "folds and seeds" if "seed" in varied else "folds"


# The kinds of group that are cross-validation, and whose estimate CROSS_VALIDATION holds.
CROSS_VALIDATED = ("folds", "folds and seeds", "repeated folds")


def fold_accuracies(runs: list[RunDir]) -> dict[str, float] | None:
    """Each fold's final validation accuracy (each measured once), keyed by the split that made it
    (data.folds, data.split_seed, data.fold); a fold run with several training seeds counts as
    their mean (seeds within a fold, never pooled with folds). None where a run has none."""
    found: dict[str, list[float]] = {}
    for run in runs:
        settings, metrics = run.settings(), status_and_metrics(run)[1]
        if not isinstance(metrics.get("val/acc"), float):
            return None
        key = ":".join(settings.get(k, "") for k in ("data.folds", "data.split_seed", "data.fold"))
        found.setdefault(key, []).append(metrics["val/acc"])
    return {key: sum(values) / len(values) for key, values in found.items()}


def cross_validation(runs: list[RunDir], metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """A cross-validated group's estimate (CROSS_VALIDATION's columns): its folds' final validation
    accuracies with the corrected interval, and the accuracy pooled over every validation image."""
    folds = fold_accuracies(runs) or {}
    k = int(runs[0].settings()["data.folds"])  # a cross-validated group's runs share it
    estimate = cross_validated_interval(list(folds.values()), folds=k)
    row = {"cv_val_acc": estimate["mean"], "cv_low": estimate["low"], "cv_high": estimate["high"]}
    validated = [m for m in metrics if isinstance(m.get("val/acc"), float)]
    if validated and all("val/images" in m for m in validated):
        images = sum(m["val/images"] for m in validated)
        right = sum(round(m["val/acc"] * m["val/images"]) for m in validated)
        pooled = accuracy_interval(right, images)
        row |= {"cv_pooled": right / images, "cv_pooled_low": pooled["low"],
                "cv_pooled_high": pooled["high"]}  # fmt: skip
    return row


def group_row(
    name: str, metrics: list[dict[str, Any]], kind: str = "seeds", runs: list[RunDir] = ()
) -> dict[str, Any]:
    """One group's n (its runs with a test accuracy: those its test mean is over), what its runs
    vary in (`kind`), each accuracy's mean, sd and 95% interval, a k-fold group's cross-validation
    estimate, and the mean training time."""
    tested = [m for m in metrics if isinstance(m.get("test/acc"), float)]
    row: dict[str, Any] = {"configuration": name, "kind": kind, "n": len(tested)}
    for column, key in (("val_acc_best", "val/acc_best"), ("test_acc", "test/acc")):
        values = [m[key] for m in metrics if isinstance(m.get(key), float)]
        stats = mean_interval(values)
        row |= {column: stats["mean"], f"{column}_sd": stats["sd"],
                f"{column}_low": stats["low"], f"{column}_high": stats["high"]}  # fmt: skip
    row["interval"] = "t"
    own = tested[0].get("test/acc_interval") if len(tested) == 1 else None
    if own:  # a group of one: its run's Wilson interval over the test images
        row |= {"test_acc_low": own["low"], "test_acc_high": own["high"], "interval": "wilson"}
    estimate = cross_validation(list(runs), metrics) if kind in CROSS_VALIDATED else {}
    row |= dict.fromkeys(CROSS_VALIDATION) | estimate
    times = [m["train_time_s"] for m in metrics if "train_time_s" in m]
    return row | {"train_time_s": sum(times) / len(times) if times else None}


def status_and_metrics(run: RunDir) -> tuple[str, dict[str, Any]]:
    """How the run ended (its manifest) and its final metrics; a run whose metrics.json is missing
    or damaged says so instead of a status its numbers do not back."""
    status = run.manifest().get("status", "-")
    try:
        metrics = run.metrics()
    except DigitsError:
        return "damaged metrics.json", {}
    if metrics is None and status != "running":
        return "no metrics.json", {}
    return status, metrics or {}


def sort_key(row: dict[str, Any]) -> float:
    """Best validation accuracy first; rows without one (failed, no metrics) last."""
    value = row["val_acc_best"]
    return -value if isinstance(value, float) and not math.isnan(value) else math.inf


def grouped(runs: list[RunDir]) -> list[tuple[str, list[RunDir]]]:
    """The runs as groups of replicates, in first-seen order."""
    groups = replicate_groups([run.settings() for run in runs])
    return [(name, [runs[i] for i in members]) for name, members in groups]


def once_per_replicate(runs: list[RunDir]) -> tuple[list[RunDir], list[str]]:
    """A group's runs, one per seed and fold: another run of the same settings, seed and fold is
    the same replicate again (its accuracy is no new sample), counted once; and a line for each
    left out, naming it and the run it repeats."""
    kept: dict[tuple[str, ...], RunDir] = {}
    notes = []
    for run in runs:
        settings = run.settings()
        replicate = tuple(str(settings.get(key)) for key in REPLICATES)
        if replicate in kept:
            notes.append(
                f"{label(run)} repeats {label(kept[replicate])} (same settings, "
                f"{' '.join(f'{k}={v}' for k, v in zip(REPLICATES, replicate, strict=True))}): "
                "counted once in its group"
            )
        else:
            kept[replicate] = run
    return list(kept.values()), notes


def units_to_test(runs: list[RunDir]) -> tuple[list[tuple[str, list[RunDir]]], list[str]]:
    """What to test against each other: the groups of replicates (each replicate once), or each
    run alone (named as in the table) when no group has two runs or all are replicates of one
    configuration; and a line for each run counted once though named twice."""
    groups, notes = [], []
    for name, members in grouped(runs):
        kept, repeated = once_per_replicate(members)
        groups.append((name, kept))
        notes += repeated
    if len(groups) == 1 or all(len(members) == 1 for _, members in groups):
        return [(label(run), [run]) for run in runs], []
    return groups, notes


def best_first(
    groups: list[tuple[str, list[RunDir]]],
) -> tuple[list[tuple[str, list[RunDir]]], list[dict[str, Any]]]:
    """The groups and a row for each (n, mean, sd, interval), best mean validation accuracy
    first."""
    rows = []
    for name, runs in groups:
        finished = [metrics for run in runs if (metrics := status_and_metrics(run)[1])]
        rows.append(group_row(name, finished, replicate_kind(runs), runs))
    order = sorted(range(len(groups)), key=lambda i: sort_key(rows[i]))
    return [groups[i] for i in order], [rows[i] for i in order]
