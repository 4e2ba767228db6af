"""Evaluate trained models: `python -m digits.evaluate run=outputs/runs/<run>` (or `ckpt_path=<file>`).

On the run's own data (its test split by default), or on any data option of conf/data/
(`data=folder data.root=my_digits`). Reports accuracy, per-class and macro precision/recall/F1, the confusion matrix, the most confused
pairs and the most confidently wrong images; writes them under the run's `evaluation/` folder and
into its TensorBoard. Given a multirun directory, evaluates every job and compares them, or with
`ensemble=true` scores the jobs as one committee (their calibrated probabilities averaged).
`tta=N` averages each model's logits over the images shifted by up to N pixels.
"""

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import hydra
from hydra.utils import get_class
from omegaconf import MISSING, DictConfig, OmegaConf, open_dict
from rich.console import Console
from rich.table import Table

import digits.data.options
import digits.training.settings  # noqa: F401  (the trainer's and data's schemas: conf/evaluate.yaml)
from digits.cli import launch, silence_known_warnings
from digits.config import config_dir
from digits.config.command_line import check_run_or_checkpoint
from digits.config.machine import check_writable
from digits.config.schema import setting, store_schemas
from digits.config.validate import settings_taken
from digits.constraints import AT_LEAST_ONE, NOT_NEGATIVE, OneOf, Range
from digits.data.building import option_name
from digits.errors import DigitsError, reports_user_errors
from digits.evaluation.report import evaluate_run, write_report
from digits.evaluation.scoring import committee
from digits.presentation.tables import interval_text
from digits.runs import RunDir, SweepDir, runs_in
from digits.runs.naming import folder_name


@dataclass
class EvaluateConfig:
    MOVED: ClassVar[dict[str, str]] = {"data_root": "data.root"}  # old keys, pointed to

    trainer: Any = MISSING
    run: str | None = MISSING
    ckpt_path: str | None = MISSING
    checkpoint: str = setting(OneOf(("best", "last")))
    split: str = setting(OneOf(("test", "val")))
    # {root}: where MNIST is, for a run trained on it (the rest is the run's own); or a data
    # option of conf/data/ (data=folder data.root=...), whose test (or val) split is scored.
    data: Any = MISSING
    batch_size: int = setting(AT_LEAST_ONE)
    tta: int = setting(Range(ge=0, le=3, note="shifts of up to 3 px: 49 views"))
    ensemble: bool = MISSING
    mistakes: int = setting(NOT_NEGATIVE)
    top_pairs: int = setting(NOT_NEGATIVE)
    tensorboard: bool = MISSING


store_schemas(evaluate=EvaluateConfig)
console = Console()


def without_own_data_root(cfg: DictConfig) -> None:
    """Drop evaluate.yaml's default `data.root` (where MNIST is, for the run's own data) from a
    data option that takes no root (data=mix, a data module of your own): Hydra merges the default
    into every option's settings, having no way to add a key only when no option is chosen. A root
    typed on the command line is a plain value, never the default's interpolation: it stays."""
    data = cfg.data
    if "_target_" not in data or "root" not in data or not OmegaConf.is_interpolation(data, "root"):
        return
    if "root" not in settings_taken(data):
        with open_dict(data):
            data.pop("root")


def data_name(data: DictConfig) -> str | None:
    """The name of the data a report is on when it is not the run's own: the option, the name of
    its folder or CSV, and a digest of its settings (folder-my_digits-1a2b3c4d)."""
    if "_target_" not in data:
        return None
    settings = OmegaConf.to_container(data, resolve=True)
    option = option_name(data)
    source = Path(str(settings.get("labels") or settings.get("root") or "")).stem
    digest = hashlib.md5(json.dumps(settings, sort_keys=True).encode(), usedforsecurity=False)
    return folder_name(f"{option}-{source}-{digest.hexdigest()[:8]}")


def print_report(result: dict, out_dir: Path) -> None:
    table = Table(title=f"{result['split']} set: {result['images']} images", header_style="bold")
    for column in ("class", "precision", "recall", "recall 95%", "f1", "support"):
        table.add_column(column, justify="right")
    for digit, row in result["per_class"].items():
        recall = row.get("recall_interval")
        shown = interval_text(recall["low"], recall["high"]) if recall else "-"
        table.add_row(digit, f"{row['precision']:.4f}", f"{row['recall']:.4f}", shown,
                      f"{row['f1']:.4f}", str(row["support"]))  # fmt: skip
    macro = result["macro"]
    table.add_row(
        "macro", f"{macro['precision']:.4f}", f"{macro['recall']:.4f}", "", f"{macro['f1']:.4f}",
        "", style="bold",
    )  # fmt: skip
    console.print(table)
    interval = interval_text(
        result["accuracy_interval"]["low"], result["accuracy_interval"]["high"]
    )
    console.print(
        f"accuracy: [bold]{result['accuracy']:.4f}[/bold] (95% interval {interval}, "
        f"Wilson, {result['images']} images)"
    )
    calibrated = result["calibration"]
    ece = calibrated["ece_interval"]
    console.print(
        f"expected calibration error (15 bins): {calibrated['ece']:.4f} (bias-corrected "
        f"{ece['bias_corrected']:.4f}, 95% interval {interval_text(ece['low'], ece['high'])}, "
        f"basic bootstrap over the images) at temperature "
        f"{calibrated['temperature']:.3f} ({calibrated['ece_uncalibrated']:.4f} uncalibrated)",
        soft_wrap=True,
    )
    pairs = ", ".join(
        f"{p['true']}→{p['predicted']} ({p['count']})" for p in result["confused_pairs"]
    )
    console.print(f"most confused (true→predicted): {pairs or 'none'}", soft_wrap=True)
    console.print(f"written to {out_dir}", soft_wrap=True)


def print_comparison(rows: list[tuple[RunDir, dict | DigitsError]]) -> None:
    """One row per job, best first; jobs that could not be evaluated last, with the reason."""
    table = Table(title="evaluation of every job", header_style="bold")
    for column in ("job", "overrides", "accuracy", "95% interval", "macro f1", "checkpoint"):
        table.add_column(column, overflow="fold")
    done = sorted(
        (row for row in rows if isinstance(row[1], dict)), key=lambda r: -r[1]["accuracy"]
    )
    for run, result in done:
        accuracy, f1 = f"{result['accuracy']:.4f}", f"{result['macro']['f1']:.4f}"
        interval = interval_text(
            result["accuracy_interval"]["low"], result["accuracy_interval"]["high"]
        )
        name = Path(result["checkpoint"]).name
        table.add_row(run.path.name, " ".join(run.overrides()), accuracy, interval, f1, name)
    for run, _ in (row for row in rows if isinstance(row[1], DigitsError)):
        table.add_row(run.path.name, " ".join(run.overrides()), "-", "-", "-", "failed (see below)")
    console.print(table)


def evaluate_committee(cfg: DictConfig, path: Path) -> None:
    """Score every job of a multirun (or one run) and the committee of them all."""
    runs = runs_in(path)
    split, members = committee(cfg, runs)
    out_dir = SweepDir(path).ensemble_evaluation(cfg.split, cfg.tta, data_name(cfg.data))
    result = {"checkpoint": [m["checkpoint"] for m in members], "split": cfg.split, "tta": cfg.tta}
    result = write_report(cfg, split, result | {"members": members}, out_dir, run=None)
    print_comparison(list(zip(runs, members, strict=True)))
    console.print(f"committee of {len(runs)}:", style="bold")
    print_report(result, out_dir)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="evaluate")
@reports_user_errors
def hydra_main(cfg: DictConfig) -> None:
    """Evaluate a run, every job of a multirun, or one checkpoint."""
    silence_known_warnings()
    without_own_data_root(cfg)
    if cfg.ensemble:
        evaluate_committee(cfg, Path(cfg.run))
        return
    if cfg.ckpt_path:
        ckpt = Path(cfg.ckpt_path)
        run = RunDir.of_checkpoint(ckpt)
        # Results go into the checkpoint's run, or next to a checkpoint outside any run.
        out_dir = (run or RunDir(ckpt.parent)).evaluation(cfg.split, cfg.tta, data_name(cfg.data))
        print_report(evaluate_run(cfg, ckpt, out_dir, run), out_dir)
        return
    if RunDir(Path(cfg.run)).checkpoints.is_dir():  # one run
        run = RunDir(Path(cfg.run))
        out_dir = run.evaluation(cfg.split, cfg.tta, data_name(cfg.data))
        print_report(evaluate_run(cfg, run.checkpoint(cfg.checkpoint), out_dir, run), out_dir)
        return
    rows: list[tuple[RunDir, dict | DigitsError]] = []
    for run in runs_in(Path(cfg.run)):  # a multirun: a job that cannot be evaluated is listed
        try:
            out_dir = run.evaluation(cfg.split, cfg.tta, data_name(cfg.data))
            rows.append((run, evaluate_run(cfg, run.checkpoint(cfg.checkpoint), out_dir, run)))
        except DigitsError as error:
            reason = run.error_file.read_text().strip() if run.error_file.is_file() else error
            rows.append((run, DigitsError(f"job {run.path.name} not evaluated: {reason}")))
    print_comparison(rows)
    for _, failure in (row for row in rows if isinstance(row[1], DigitsError)):
        print(f"error: {failure}", file=sys.stderr)
    if any(isinstance(result, DigitsError) for _, result in rows):
        sys.exit(1)


def check_evaluate(cfg: DictConfig) -> None:
    """One thing to evaluate: a run (or multirun) folder, or a checkpoint file; a committee
    (ensemble=true) is the jobs of a folder."""
    check_run_or_checkpoint(cfg, "evaluates")
    if "_target_" in cfg.data and not get_class(cfg.data["_target_"]).LABELLED:
        raise DigitsError(
            f"data={option_name(cfg.data)}: images without labels, nothing to score against; "
            "read them with python -m digits.predict, or evaluate on labelled digits (data=folder)"
        )
    if cfg.ensemble and not cfg.run:
        raise DigitsError(
            "ensemble=true scores the jobs of a multirun as one committee: give "
            "run=<multirun directory> instead of ckpt_path="
        )
    # The report is written where the model is: find out now, not after scoring 10,000 images.
    if cfg.ckpt_path:
        ckpt = Path(cfg.ckpt_path)
        folder, key = (RunDir.of_checkpoint(ckpt) or RunDir(ckpt.parent)).path, "ckpt_path"
    else:
        folder, key = Path(cfg.run), "run"
    if folder.is_dir():
        check_writable(
            folder, key, "evaluate writes its report there; copy the run to a writable folder"
        )


def main() -> None:
    """`python -m digits.evaluate`: check the command line, then run."""
    launch("evaluate", hydra_main, check_evaluate, prepare=without_own_data_root)


if __name__ == "__main__":
    main()
