"""The run directory: the one place that knows where a run keeps what.

    <run>/
      .hydra/config.yaml, overrides.yaml   the composed config (interpolations kept) and the
                                           command line's overrides
      train.log                            the log
      tensorboard/<run name>/              TensorBoard events
      checkpoints/<best>.ckpt, last.ckpt   best by val/acc (ModelCheckpoint's choice) and the latest
      metrics.json                         final metrics, incl. best_checkpoint
      test_predictions.csv                 each test image's label, predicted class, confidence
      manifest.json                        code, packages, data, machine, command, start/end, status
      requirements.txt, code.diff          every installed package; uncommitted changes, if any
      tune.json, lr_find.png               what tune=lr_find / tune=batch_size found
      reproduction.json                    reproduce=<run>: its metrics beside the original's
      evaluation/ (evaluation_<split>/)    what digits.evaluate wrote: metrics.json, figures,
                                           predictions.csv (each image's result, as above)
      export/<checkpoint>.onnx (.pt)       what digits.export wrote
      error.txt                            why a multirun job failed
      .lock                                held by the process writing the run (holding.py)

A multirun's sweep directory (SweepDir) holds its jobs, one per subdirectory, and:

    <sweep>/
      multirun.yaml                        the sweep's config
      summary.md, summary.csv              every job (or trial), best first
      groups.csv                           jobs that differ only in seed or fold, as groups
      study.json                           a search's study: its storage URL and name
      optuna.db                            the study, unless hydra.sweeper.storage is given
      optimization_results.yaml            the best trial: value, parameters, command
      <plot>.png                           Optuna's plots of the study

`python -m digits.compare` writes a comparison of any runs (ComparisonDir):

    <log_dir>/comparisons/<time>/
      comparison.md, comparison.csv        the runs' config differences and final metrics, and
                                           (in the .md) the groups and the tests between them
      groups.csv                           replicates (seeds, folds) grouped: n, mean, sd, interval
      tests.json                           is A better than B: each test's figures and verdict
      accuracy_vs_time.png                 test accuracy (95% interval) against training time

Configs reach these paths through the `run` resolver: `${run:checkpoints}` is
`RunDir(paths.output_dir).checkpoints`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from digits.errors import DigitsError
from digits.runs.differences import settings_of

LAST = "last"  # ModelCheckpoint's file name for the latest checkpoint, without ".ckpt"
# What digits.evaluate writes in an evaluation folder beside metrics.json: each image's result.
PREDICTIONS_FILE = "predictions.csv"


def md5(path: Path) -> str:
    """The MD5 of a file's bytes (integrity, not security)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def of_checkpoint(cls, path: Path) -> RunDir | None:
        """The run a checkpoint file sits in, if it sits in a run's checkpoints/ folder."""
        run = cls(path.parent.parent)
        return run if path.parent == run.checkpoints else None

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / f"{LAST}.ckpt"

    @property
    def config_file(self) -> Path:
        return self.path / ".hydra" / "config.yaml"

    @property
    def overrides_file(self) -> Path:
        return self.path / ".hydra" / "overrides.yaml"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    @property
    def test_predictions_file(self) -> Path:
        return self.path / "test_predictions.csv"

    @property
    def manifest_file(self) -> Path:
        return self.path / "manifest.json"

    @property
    def requirements_file(self) -> Path:
        return self.path / "requirements.txt"

    @property
    def code_diff_file(self) -> Path:
        return self.path / "code.diff"

    @property
    def tune_file(self) -> Path:
        return self.path / "tune.json"

    @property
    def lr_find_plot(self) -> Path:
        return self.path / "lr_find.png"

    @property
    def reproduction_file(self) -> Path:
        return self.path / "reproduction.json"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def error_file(self) -> Path:
        return self.path / "error.txt"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    def holds_run(self) -> bool:
        """Whether a run (finished, failed or still going) has written here."""
        return self.is_run() or self.manifest_file.is_file() or self.metrics_file.is_file()

    def status(self) -> str:
        """How the run here ended, in a word, as its manifest says (else whether it finished)."""
        recorded = self.manifest().get("status")
        return recorded or ("finished" if self.metrics_file.is_file() else "unfinished")

    def failed(self) -> bool:
        """A multirun job that failed (hydra_main wrote why)."""
        return self.error_file.is_file()

    def is_run(self) -> bool:
        """A run directory, finished or not (a failed multirun job has no checkpoints)."""
        return self.checkpoints.is_dir() or self.overrides_file.is_file()

    def evaluation(self, split: str, tta: int = 0, data: str | None = None) -> Path:
        """Where digits.evaluate writes its report on `split` (with test-time shifts up to `tta`)
        of the run's own data, or of other `data` (its name: digits.evaluate's data_name)."""
        name = "evaluation" if split == "test" else f"evaluation_{split}"
        name = f"{name}_on_{data}" if data else name
        return self.path / (f"{name}_tta{tta}" if tta else name)

    def overrides(self) -> list[str]:
        """The command-line overrides the run was made with (Hydra's own left out)."""
        if not self.overrides_file.is_file():
            return []
        overrides = read_yaml(self.overrides_file)
        if not OmegaConf.is_list(overrides):
            raise DigitsError(f"{self.overrides_file}: damaged, not a list of overrides")
        return [str(o) for o in overrides if not str(o).startswith("hydra")]

    def choices(self) -> dict[str, Any]:
        """The option the run chose in each config group (model: cnn, experiment: null...)."""
        hydra_file = self.config_file.with_name("hydra.yaml")
        if not hydra_file.is_file():
            return {}
        choices = OmegaConf.select(read_yaml(hydra_file), "hydra.runtime.choices")
        if not OmegaConf.is_dict(choices):
            raise DigitsError(f"{hydra_file}: damaged, no hydra.runtime.choices")
        return OmegaConf.to_container(choices)

    def settings(self) -> dict[str, str]:
        """The run's config groups' options (`choices.model`: cnn) and its composed config as
        dotted keys (settings_of), as its .hydra/ folder records them."""
        if not self.config_file.is_file():
            return {}
        return settings_of(read_yaml(self.config_file), self.choices())

    def metrics(self) -> dict[str, Any] | None:
        """The run's final metrics.json, or None before it finished."""
        if not self.metrics_file.is_file():
            return None
        try:
            return json.loads(self.metrics_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DigitsError(f"{self.metrics_file}: damaged, not JSON ({error})") from error

    def manifest(self) -> dict[str, Any]:
        """The run's manifest.json ({} for a run made before manifests, or a damaged one)."""
        try:
            return json.loads(self.manifest_file.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return {}

    def tensorboard_events(self) -> Path:
        """The folder of the run's TensorBoard events (tensorboard/<run name>/), so that later
        figures join its curves."""
        events = sorted(self.tensorboard.rglob("events.out.tfevents.*"))
        return events[0].parent if events else self.tensorboard

    def best_checkpoint(self) -> Path:
        """The checkpoint ModelCheckpoint chose as best by val/acc: as metrics.json records it, or
        as last.ckpt does for a run that did not finish. Looked up by name in this directory, so a
        moved or copied run still finds its own."""
        try:
            metrics = self.metrics() or {}
        except DigitsError as damaged:
            raise DigitsError(
                f"{damaged}; delete it to use the best checkpoint that checkpoints/last.ckpt "
                "records"
            ) from damaged
        recorded = metrics.get("best_checkpoint") or self._best_in_last_checkpoint()
        if not recorded:
            raise DigitsError(f"run={self.path}: no best checkpoint recorded (no metrics.json)")
        path = self.checkpoints / Path(recorded).name
        if not path.is_file():
            raise DigitsError(f"{path}: checkpoint not found in {self.checkpoints}")
        return path

    def _best_in_last_checkpoint(self) -> str:
        if not self.last_checkpoint.is_file():
            return ""
        import torch  # here: the run directory's layout needs no torch (a command's checks)

        saved = torch.load(self.last_checkpoint, map_location="cpu", weights_only=True)
        # Found by what the callback saved (ModelCheckpoint.state_dict: its monitor and best
        # path), not by Lightning's key for it, whose text is Lightning's own business.
        states = saved.get("callbacks", {}).values()
        return next(
            (
                state["best_model_path"]
                for state in states
                if isinstance(state, dict)
                and state.get("monitor") == "val/acc"
                and state.get("best_model_path")
            ),
            "",
        )

    def test_accuracy(self, checkpoint: Path) -> float | None:
        """The test accuracy measured for `checkpoint`: by `digits.evaluate` (evaluation/), or by
        training's own test of its best checkpoint (metrics.json); None if it was never tested."""
        evaluated = self.evaluation("test") / "metrics.json"
        if evaluated.is_file():
            result = json.loads(evaluated.read_text())
            if Path(result.get("checkpoint", "")).name == checkpoint.name:
                return result["accuracy"]
        metrics = self.metrics() or {}
        if Path(metrics.get("best_checkpoint") or "").name == checkpoint.name:
            return metrics.get("test/acc")
        return None

    def exported(self, checkpoint: Path, suffix: str) -> Path:
        """Where `digits.export` writes a checkpoint of the run in the format with this suffix."""
        return self.path / "export" / f"{checkpoint.stem}{suffix}"

    def checkpoint(self, which: str) -> Path:
        """The run's `best` or `last` checkpoint."""
        if which == "best":
            return self.best_checkpoint()
        if not self.last_checkpoint.is_file():
            raise DigitsError(f"{self.last_checkpoint}: checkpoint not found in {self.checkpoints}")
        return self.last_checkpoint


@dataclass(frozen=True)
class SweepDir:
    path: Path

    @property
    def multirun_file(self) -> Path:
        return self.path / "multirun.yaml"

    @property
    def summary_md(self) -> Path:
        return self.path / "summary.md"

    @property
    def summary_csv(self) -> Path:
        return self.path / "summary.csv"

    @property
    def groups_csv(self) -> Path:
        return self.path / "groups.csv"

    @property
    def study_file(self) -> Path:
        return self.path / "study.json"

    @property
    def study_db(self) -> Path:
        return self.path / "optuna.db"

    @property
    def best_file(self) -> Path:
        return self.path / "optimization_results.yaml"

    def plot(self, name: str) -> Path:
        return self.path / f"{name}.png"

    def ensemble_evaluation(self, split: str, tta: int = 0, data: str | None = None) -> Path:
        """Where digits.evaluate ensemble=true writes the committee of the jobs' report."""
        return self.path / f"ensemble_{RunDir(self.path).evaluation(split, tta, data).name}"

    def jobs(self) -> list[RunDir]:
        """The jobs' run directories, in job order."""
        jobs = [RunDir(p) for p in self.path.iterdir() if RunDir(p).is_run()]
        return sorted(jobs, key=lambda job: job_order(job.path))


@dataclass(frozen=True)
class ComparisonDir:
    path: Path

    @property
    def markdown(self) -> Path:
        return self.path / "comparison.md"

    @property
    def csv(self) -> Path:
        return self.path / "comparison.csv"

    @property
    def groups_csv(self) -> Path:
        return self.path / "groups.csv"

    @property
    def tests_json(self) -> Path:
        return self.path / "tests.json"

    @property
    def plot(self) -> Path:
        return self.path / "accuracy_vs_time.png"


def read_yaml(path: Path) -> Any:
    """A YAML file a run left, or a one-line DigitsError naming it when it is damaged."""
    try:
        return OmegaConf.load(path)
    except (OSError, yaml.YAMLError, OmegaConfBaseException, UnicodeDecodeError) as error:
        reason = " ".join(str(error).split())[:200]
        raise DigitsError(f"{path}: damaged, not readable YAML ({reason})") from error


def runs_in(path: Path) -> list[RunDir]:
    """The run itself, or every job of a multirun directory, in job order."""
    if not path.is_dir():
        raise DigitsError(f"run={path}: no such directory")
    if RunDir(path).checkpoints.is_dir():
        return [RunDir(path)]
    jobs = SweepDir(path).jobs()
    if not jobs:
        raise DigitsError(f"run={path}: neither a run (no checkpoints/) nor a multirun of runs")
    return jobs


def job_order(path: Path) -> tuple[int, str]:
    """Multirun jobs by number (0, 1, ..., 10), then other names."""
    return (len(path.name), path.name) if path.name.isdigit() else (1_000_000, path.name)


def run_part(part: str, _root_: DictConfig) -> str | None:
    """`${run:<part>}` in configs: that part of this run's directory (paths.output_dir); None
    where Hydra only shows the config (`--cfg job --resolve`: no run, no directory)."""
    output_dir = _root_.paths.output_dir
    return str(getattr(RunDir(Path(output_dir)), part)) if output_dir else None


def register_resolver() -> None:
    if not OmegaConf.has_resolver("run"):
        OmegaConf.register_new_resolver("run", run_part)
