"""A Hydra sweeper on current Optuna: `python -m digits.train -m hparams_search=optuna`.

Each worker (this command, run once or on several machines at a time) repeats: ask the study for
a trial within `n_trials`, run it as a Hydra job through the configured launcher (basic, joblib,
submitit), tell the study how it ended (complete, pruned or failed). The study lives in an RDB
storage, so a rerun of the same command continues it and workers sharing it split the trials.

Written for Optuna 5 because hydra-optuna-sweeper's last release requires optuna < 3. What the
search looks like in YAML: conf/hydra/sweeper/optuna.yaml.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.errors import ConfigCompositionException, InstantiationException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from optuna.exceptions import ExperimentalWarning
from optuna.pruners import BasePruner, NopPruner
from optuna.storages import RDBStorage, fail_stale_trials
from optuna.study import Study
from optuna.trial import Trial, TrialState

from digits.errors import DigitsError, reports_user_errors
from digits.runs.run_dir import RunDir
from digits.search.space import SearchSpace
from digits.search.study import (
    NOT_RUN,
    SeededPerTrial,
    StudyRef,
    check_same_space,
    counted,
    retry,
    still_needed,
    trial_id,
    within_budget,
)

log = logging.getLogger(__name__)


class StudySweeper(Sweeper):
    """Hydra's sweeper interface over an Optuna study; the arguments are the config's keys."""

    def __init__(
        self,
        sampler: DictConfig,
        direction: str,
        storage: str | None,
        study_name: str,
        n_trials: int,
        n_jobs: int,
        params: DictConfig | None,
        pruner: DictConfig | None = None,
        model_params: DictConfig | None = None,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        trial_number: int | None = None,  # set for each trial's job, read there (pruning.py)
    ) -> None:
        self.settings = OmegaConf.create(
            {
                "sampler": sampler,
                "pruner": pruner,
                "params": params,
                "model_params": model_params,
                "direction": direction,
            }
        )
        self.storage = storage
        self.study_name = study_name
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.heartbeat = (heartbeat_interval, grace_period)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    @reports_user_errors
    def sweep(self, arguments: list[str]) -> None:
        sweep_dir = Path(self.config.hydra.sweep.dir)
        model = self.config.hydra.runtime.choices.get("model")
        self.space, pruner = parse(self.settings, arguments, model)
        self.ref = StudyRef.of_sweep(self.storage, self.study_name, sweep_dir)
        if self.storage is None:  # the study's file goes into the sweep directory
            sweep_dir.mkdir(parents=True, exist_ok=True)
        self.rdb = self.ref.storage_with(*self.heartbeat)
        self.study = self._open(pruner)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        self.ref.save(sweep_dir)
        done = sum(t.state.is_finished() for t in counted(self.study))
        log.info("study %s in %s: %d of %d trials done", self.ref.name, self.ref.storage, done,
                 self.n_trials)  # fmt: skip
        with stop_requests() as stop:
            while not stop.is_set() and (batch := self._ask()):
                self._run(batch, stop)
        if stop.is_set():
            log.warning("stopped: run the same command to continue the study")
            raise SystemExit(128 + signal.SIGTERM)

    def _open(self, pruner: BasePruner) -> Study:
        seed = self.settings.sampler.get("seed")
        sampler = SeededPerTrial(lambda s: instantiate(self.settings.sampler, seed=s), seed)
        study = optuna.create_study(
            storage=self.rdb,
            study_name=self.ref.name,
            direction=self.settings.direction,
            load_if_exists=True,
            sampler=sampler,
            pruner=pruner,
        )
        if study.direction.name.lower() != self.settings.direction:
            raise DigitsError(
                f"hydra.sweeper.direction={self.settings.direction}: study {self.ref.name} in "
                f"{self.ref.storage} was made to {study.direction.name.lower()}; give another "
                "study_name"
            )
        check_same_space(study, self.ref, self.space.distributions)
        return study

    def _ask(self) -> list[Trial]:
        """Up to n_jobs trials, as many as the study still needs; first, a dead worker's trial is
        failed and queued again."""
        batch: list[Trial] = []
        with warnings.catch_warnings():
            # Optuna marks heartbeats experimental (stable since 2.9) and expects them from
            # study.optimize: heartbeats() below records them as it does.
            warnings.simplefilter("ignore", ExperimentalWarning)
            warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
            fail_stale_trials(self.study)
            for _ in range(min(self.n_jobs, still_needed(self.study, self.n_trials))):
                trial = self.study.ask(self.space.distributions)
                if not within_budget(self.study, trial, self.n_trials):
                    trial.set_user_attr("fail_reason", NOT_RUN)
                    self.study.tell(trial, state=TrialState.FAIL)
                    break
                batch.append(trial)
        return batch

    def _run(self, batch: list[Trial], stop: threading.Event) -> None:
        """The batch's trials as jobs of the launcher; then tell the study how each ended."""
        jobs, job_dirs = [], []
        for trial in batch:
            overrides = self.space.overrides(trial.params)
            job_dirs.append(RunDir(Path(self.config.hydra.sweep.dir, job_name(trial))))
            trial.set_user_attr("overrides", overrides)
            trial.set_user_attr("job_dir", str(job_dirs[-1].path))
            jobs.append([*overrides, *trial_overrides(trial, self.ref)])
        try:
            with heartbeats(self.rdb, batch, self.heartbeat[0]):
                returns = self.launcher.launch(jobs, initial_job_idx=batch[0].number)
        except (ConfigCompositionException, OmegaConfBaseException) as error:
            raise not_composed(self.study, batch, error) from error
        except BaseException:  # SIGTERM or Ctrl-C in a job: its trial runs again on the next run
            for trial in batch:
                retry(self.study, trial)
                log.warning("trial %d interrupted: queued to run again", trial.number)
            raise
        for trial, job, run in zip(batch, returns, job_dirs, strict=True):
            tell(self.study, trial, job, run, interrupted=stop.is_set())


def dimensions(settings: DictConfig, model: str | None) -> dict[str, Any]:
    """The search's dimensions: every model's (`params`), then the chosen model's own."""
    shared = OmegaConf.to_container(settings.params or {})
    own = OmegaConf.select(settings, f"model_params.{model}") if model else None
    return shared | (OmegaConf.to_container(own) if own else {})


def not_composed(study: Study, batch: list[Trial], error: Exception) -> DigitsError:
    """Trials whose overrides Hydra cannot compose fail with the reason (rerunning them would fail
    again): the search stops, saying so."""
    reason = " ".join(str(error).split())[:300]
    for trial in batch:
        trial.set_user_attr("fail_reason", f"overrides do not compose: {reason}")
        study.tell(trial, state=TrialState.FAIL)
    numbers = ", ".join(str(trial.number) for trial in batch)
    return DigitsError(
        f"trial {numbers}: its overrides do not compose ({reason}); fix the search space"
    )


def parse(
    settings: DictConfig, arguments: Sequence[str], model: str | None
) -> tuple[SearchSpace, BasePruner]:
    """The search space and the pruner, or DigitsError naming what is wrong (also used to check
    the command line before anything starts)."""
    space = SearchSpace.parse(dimensions(settings, model), arguments)
    if not space.distributions:
        raise DigitsError("hydra.sweeper.params: no dimension to search (e.g. choice(...))")
    if settings.direction not in ("maximize", "minimize"):
        raise DigitsError(
            f"hydra.sweeper.direction={settings.direction}: must be maximize or minimize"
        )
    built(settings, "sampler")  # built again per trial, with its seed
    return space, build_pruner(settings)


def build_pruner(settings: DictConfig) -> BasePruner:
    """The configured pruner, or Optuna's that prunes nothing."""
    return built(settings, "pruner") or NopPruner()


def built(settings: DictConfig, key: str) -> Any:
    node = settings.get(key)
    if not node:
        return None
    try:
        return instantiate(node)
    except InstantiationException as error:
        reason = " ".join(str(error.__cause__ or error).split())
        raise DigitsError(f"hydra.sweeper.{key}: {reason}") from error


def job_name(trial: Trial) -> str:
    """The trial's job directory in the sweep directory: its number in the study."""
    return str(trial.number)


def trial_overrides(trial: Trial, ref: StudyRef) -> list[str]:
    """Hydra's own overrides for the trial's job: its directory, and how to reach its trial."""
    storage = ref.storage.replace("\\", "\\\\").replace("'", "\\'")
    return [
        f"hydra.sweep.subdir={job_name(trial)}",
        f"hydra.sweeper.storage='{storage}'",
        f"hydra.sweeper.trial_number={trial.number}",
    ]


def tell(study: Study, trial: Trial, job: JobReturn, run: RunDir, interrupted: bool) -> None:
    """Record how the trial's job ended: a value, pruned, or failed with the job's reason."""
    try:
        value = float(job.return_value)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
        return
    except Exception as error:
        value, reason = math.nan, f"{type(error).__name__}: {error}".splitlines()[0]
    else:
        error = run.error_file
        reason = error.read_text().strip() if error.is_file() else "the value is not a number"
    if math.isfinite(value):
        study.tell(trial, value)
    elif interrupted:
        retry(study, trial)
    else:
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=TrialState.FAIL)


@contextmanager
def heartbeats(storage: RDBStorage, batch: list[Trial], interval: int | None) -> Iterator[None]:
    """Record the batch's trials as alive every `interval` seconds while they run, as Optuna's own
    optimize loop does; other workers fail trials whose heartbeat stops (the worker died)."""
    if not interval:
        yield
        return
    done = threading.Event()
    ids = [trial_id(storage, trial.study.study_name, trial.number) for trial in batch]

    def beat() -> None:
        while True:
            for stored in ids:
                storage.record_heartbeat(stored)
            if done.wait(interval):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextmanager
def stop_requests() -> Iterator[threading.Event]:
    """SIGTERM between jobs ends the sweep after the current one. During fit Lightning also gets
    the signal: the job saves its checkpoint and stops, and its trial is queued again."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)
