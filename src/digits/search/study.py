"""The Optuna study a search works on: where it is stored, which of its trials count, how they are
sampled.

Every search keeps its study in an RDB storage (by default `optuna.db` in the sweep directory), so
that each trial's job, in this process or another, can report to it, several workers can share it,
and `optuna-dashboard <url>` can show it.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.exceptions import ExperimentalWarning
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import Study
from optuna.trial import FrozenTrial, Trial, TrialState
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from digits.config.extras import require_extra
from digits.errors import DigitsError
from digits.runs.run_dir import SweepDir

CREATE_ATTEMPTS = 4
# Set on a trial whose worker was stopped (SIGTERM, Ctrl-C) or died: it is retried, not counted.
INTERRUPTED = "interrupted"
# Set on a trial asked when another worker had just taken the study's last one: never run.
NOT_RUN = "not run: the study already had n_trials"
# The study's user attribute holding the space it was made to search.
SPACE = "search_space"


@dataclass(frozen=True)
class StudyRef:
    """Where a study lives: an SQLAlchemy URL and the study's name."""

    storage: str
    name: str

    @classmethod
    def of_sweep(cls, storage: str | None, name: str, sweep_dir: Path) -> StudyRef:
        """`storage: null` is a SQLite file in the sweep directory."""
        return cls(storage or f"sqlite:///{SweepDir(sweep_dir).study_db.resolve()}", name)

    def save(self, sweep_dir: Path) -> None:
        SweepDir(sweep_dir).study_file.write_text(json.dumps(asdict(self)) + "\n")

    @classmethod
    def of_saved(cls, sweep_dir: Path) -> StudyRef | None:
        path = SweepDir(sweep_dir).study_file
        return cls(**json.loads(path.read_text())) if path.is_file() else None

    def storage_with(
        self, heartbeat_interval: int | None = None, grace_period: int | None = None
    ) -> RDBStorage:
        """Optuna's RDB storage; with a heartbeat, trials of a worker that died are failed after
        `grace_period` seconds and queued again (Optuna's RetryHeartbeatStaleTrialCallback)."""
        if self.storage.startswith("postgresql"):
            require_extra("search", f"hydra.sweeper.storage={self.storage}")
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                return self._rdb(heartbeat_interval, grace_period)
            except Exception as error:  # SQLAlchemy's URL, driver and connection errors alike
                # Workers started together on an empty database both create Optuna's tables;
                # the one that lost finds them made on its next attempt.
                if not _lost_creation_race(error) or attempt == CREATE_ATTEMPTS:
                    raise self._unusable(error) from error
                time.sleep(0.5 * attempt)
        raise AssertionError("unreachable")

    def _rdb(self, heartbeat_interval: int | None, grace_period: int | None) -> RDBStorage:
        sqlite = self.storage.startswith("sqlite")
        # SQLite: wait for a busy file instead of failing; a server: drop dead pooled connections.
        engine = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats: stable since 2.8
            return RDBStorage(
                self.storage,
                engine_kwargs=engine,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=_retry() if heartbeat_interval else None,
            )

    def _unusable(self, error: Exception) -> DigitsError:
        reason = " ".join(str(error).split())[:300]
        return DigitsError(
            f"hydra.sweeper.storage={self.storage}: cannot open it as an Optuna storage ({reason})"
        )

    def load(self, pruner: BasePruner | None = None) -> Study:
        return optuna.load_study(study_name=self.name, storage=self.storage_with(), pruner=pruner)

    def trial(self, number: int, pruner: BasePruner) -> optuna.Trial:
        """Trial `number`, asked in another process (the sweeper's), to report to and be pruned
        by `pruner`. Trial's documented constructor attaches to a stored trial by its storage id
        (study.ask() would make a new one)."""
        storage = self.storage_with()
        study = optuna.load_study(study_name=self.name, storage=storage, pruner=pruner)
        return optuna.Trial(study, trial_id(storage, self.name, number))


def trial_id(storage: BaseStorage, study_name: str, number: int) -> int:
    """The storage's id of trial `number` of a study (Optuna's trial objects keep it private)."""
    study_id = storage.get_study_id_from_name(study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, number)


def check_same_space(
    study: Study, ref: StudyRef, distributions: dict[str, BaseDistribution]
) -> None:
    """A stored study continues only over the space it was made to search: its samplers learn
    from every trial's parameters, and its best trial would be the best of two searches. The
    first run records the space (so does the first run continuing a study made before this)."""
    wanted = {name: json.loads(distribution_to_json(d)) for name, d in distributions.items()}
    recorded = study.user_attrs.get(SPACE)
    if recorded is None:
        study.set_user_attr(SPACE, wanted)
        return
    changed = sorted(n for n in {*recorded, *wanted} if recorded.get(n) != wanted.get(n))
    if changed:
        raise DigitsError(
            f"study {ref.name} in {ref.storage} was made to search another space (it differs in "
            f"{', '.join(changed)}): continue it with the dimensions it was made with, or give "
            "another hydra.sweeper.study_name"
        )


def _lost_creation_race(error: Exception) -> bool:
    """The table, type or version row another process created first (PostgreSQL: a duplicate
    key; SQLite: 'table ... already exists')."""
    if isinstance(error, IntegrityError | ProgrammingError):
        return True
    return isinstance(error, OperationalError) and "already exists" in str(error)


def retry(study: Study, trial: Trial, reason: str = INTERRUPTED) -> None:
    """Fail a trial that did not finish through no fault of its own and queue its parameters
    again, as Optuna does for a worker whose heartbeat stopped."""
    trial.set_user_attr("fail_reason", reason)
    frozen = study.tell(trial, state=TrialState.FAIL)
    _retry()(study, frozen)


def _retry() -> RetryHeartbeatStaleTrialCallback:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # stable since Optuna 2.8
        return RetryHeartbeatStaleTrialCallback()


def counted(study: Study) -> list[FrozenTrial]:
    """The trials that use up `n_trials`, in the order they were created: all but the ones that
    were interrupted and queued again (their retry counts instead) and the ones never run."""
    trials = study.get_trials(deepcopy=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        retried = {RetryHeartbeatStaleTrialCallback.retried_trial_number(t) for t in trials}
    return sorted(
        (
            t
            for t in trials
            if t.number not in retried and t.user_attrs.get("fail_reason") != NOT_RUN
        ),
        # Creation order: the RDB storage numbers a study's trials under a lock on the study.
        key=lambda t: t.number,
    )


def still_needed(study: Study, n_trials: int) -> int:
    """How many trials to ask for: queued ones (a retry, an enqueued trial) are not asked yet."""
    started = [t for t in counted(study) if t.state != TrialState.WAITING]
    return n_trials - len(started)


def within_budget(study: Study, trial: Trial, n_trials: int) -> bool:
    """Whether `trial` is among the first `n_trials` counted ones. Two workers that both saw one
    trial left may both ask for it; the trial numbers decide which one runs it."""
    numbers = [t.number for t in counted(study)]
    return trial.number in numbers[:n_trials]


class SeededPerTrial(BaseSampler):
    """A sampler seeded from (`seed`, trial number) for each trial, so that a resumed search, or a
    second worker with the same config, does not draw the parameters already drawn (one fixed seed
    per process would repeat the first random trials). Optuna's samplers keep no other state: they
    read the study's history from the storage."""

    def __init__(self, make: Callable[[int | None], BaseSampler], seed: int | None) -> None:
        self._make = make
        self._seed = seed
        self._number: int | None = None
        self._sampler = make(seed)

    def _for(self, trial: FrozenTrial) -> BaseSampler:
        if self._seed is not None and trial.number != self._number:
            # SeedSequence: samplers seeded with neighbouring integers draw alike at first.
            seed = int(np.random.SeedSequence([self._seed, trial.number]).generate_state(1)[0])
            self._number, self._sampler = trial.number, self._make(seed)
        return self._sampler

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, Any]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, Any]
    ) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: Any
    ) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self._for(trial).after_trial(study, trial, state, values)
