"""Hyperparameter search on Optuna (digits.search): the space from Hydra's grammar, per-trial seeds,
which trials count, and whole searches: pruned and failed trials, the summary and the best trial's
command, an interrupted search continued, two workers on one SQLite or PostgreSQL study."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from servers import free_port, serving  # tools/servers.py

from conftest import FAST, run_cli, start_training
from digits.config import config_dir
from digits.config.command_line import check_command_line
from digits.errors import DigitsError
from digits.runs import RunDir
from digits.search.checks import check_dimensions, check_search
from digits.search.space import SearchSpace
from digits.search.study import (
    SeededPerTrial,
    StudyRef,
    check_same_space,
    counted,
    retry,
    still_needed,
    within_budget,
)
from digits.search.sweeper import build_pruner, not_composed

optuna.logging.set_verbosity(optuna.logging.WARNING)

PARAMS = {
    "optimizer.lr": "tag(log, interval(0.0001, 0.01))",
    "data.batch_size": "choice(32, 64, 128, 256)",
    "model.hidden": "range(64, 257, 64)",
    "trainer.max_epochs": "tag(int, interval(1, 4))",
}
# A quick search: the cnn small, three epochs of three batches, every dimension but lr fixed.
QUICK = [
    "hparams_search=optuna",
    *FAST,
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=3",
    "data.batch_size=64",
    "model.hidden=32",
    "model.dropout=0.1",
    "logger=none",
    "hydra.sweeper.sampler.n_startup_trials=100",
]


# --- the space, the sampler, the budget ------------------------------------------------------


def test_the_space_maps_hydra_grammar_to_optuna_distributions() -> None:
    space = SearchSpace.parse(PARAMS, [])
    assert space.distributions == {
        "optimizer.lr": FloatDistribution(0.0001, 0.01, log=True),
        "data.batch_size": CategoricalDistribution([32, 64, 128, 256]),
        "model.hidden": IntDistribution(64, 256, step=64),
        "trainer.max_epochs": IntDistribution(1, 4),
    }
    assert space.fixed == {}


def test_the_command_line_replaces_adds_and_fixes_dimensions() -> None:
    args = ["optimizer.lr=choice(0.1, 0.2)", "data.batch_size=16", "+model.extra=a,b"]
    space = SearchSpace.parse(PARAMS, args)
    assert space.distributions["optimizer.lr"] == CategoricalDistribution([0.1, 0.2])
    assert space.distributions["model.extra"] == CategoricalDistribution(["a", "b"])
    assert "data.batch_size" not in space.distributions
    assert list(space.fixed.values()) == ["data.batch_size=16"]
    overrides = space.overrides(
        {"optimizer.lr": 0.1, "model.hidden": 128, "trainer.max_epochs": 2, "model.extra": "b"}
    )
    assert overrides[0] == "data.batch_size=16" and "+model.extra=b" in overrides


def test_sampled_values_read_back_unchanged() -> None:
    values = {"a": 0.1 + 0.2, "b": "two words", "c": None, "d": True, "e": "it's"}
    space = SearchSpace.parse({key: "choice(0, 1)" for key in values}, [])
    parsed = OverridesParser.create().parse_overrides(space.overrides(values))
    assert {o.key_or_group: o.value() for o in parsed} == values


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("interval(1, 0.5)", "the interval is empty"),
        ("tag(log, interval(0, 1))", "a log scale needs a start above 0"),
        ("range(1.5, 3)", "range() needs integers"),
        ("tag(shuffle, choice(1, 2))", "not a search dimension"),
        ("choice(1,", "choice(...), interval(...)"),
    ],
)
def test_a_bad_dimension_is_named(value: str, message: str) -> None:
    with pytest.raises(DigitsError) as raised:
        SearchSpace.parse({"x": value}, [])
    assert str(raised.value).startswith(f"x={value}: ") and message in str(raised.value)


def ask_params(study: optuna.Study, space: SearchSpace, count: int) -> list[dict]:
    params = []
    for _ in range(count):
        trial = study.ask(space.distributions)
        params.append(trial.params)
        study.tell(trial, 0.5)
    return params


def test_each_trial_is_seeded_by_its_number_so_a_resumed_search_draws_anew() -> None:
    space = SearchSpace.parse(PARAMS, [])

    def sampler() -> SeededPerTrial:
        return SeededPerTrial(lambda s: optuna.samplers.RandomSampler(seed=s), seed=7)

    study = optuna.create_study(sampler=sampler())
    first = ask_params(study, space, 3)
    study.sampler = sampler()  # a second process on the same study (resumed, or a worker)
    later = ask_params(study, space, 3)
    assert all(p not in first for p in later)
    again = ask_params(optuna.create_study(sampler=sampler()), space, 3)
    assert again == first  # same seed, same trial numbers: the same values


def test_interrupted_trials_are_retried_and_do_not_count() -> None:
    study = optuna.create_study(direction="maximize")
    space = SearchSpace.parse({"x": "interval(0, 1)"}, [])
    done = study.ask(space.distributions)
    study.tell(done, 0.3)
    stopped = study.ask(space.distributions)
    retry(study, stopped)
    trials = study.get_trials()
    assert trials[stopped.number].state == TrialState.FAIL
    assert trials[stopped.number].user_attrs["fail_reason"] == "interrupted"
    assert [t.number for t in counted(study)] == [done.number, 2]
    assert still_needed(study, n_trials=2) == 1  # the queued retry is yet to be asked for
    again = study.ask(space.distributions)  # the queued retry comes first, with the same values
    assert again.number == 2 and again.params == stopped.params
    assert within_budget(study, again, n_trials=2)
    extra = study.ask(space.distributions)
    assert not within_budget(study, extra, n_trials=2)


def test_a_stored_study_continues_only_over_the_space_it_was_made_to_search(tmp_path: Path) -> None:
    ref = StudyRef(f"sqlite:///{tmp_path / 'study.db'}", "s")
    made = SearchSpace.parse({"lr": "interval(0.1, 1)", "bs": "choice(32, 64)"}, [])
    study = optuna.create_study(storage=ref.storage, study_name=ref.name)
    check_same_space(study, ref, made.distributions)  # the first run records its space
    again = optuna.load_study(storage=ref.storage, study_name=ref.name)
    check_same_space(again, ref, made.distributions)  # the same space continues
    for changed in (["bs=choice(16, 32)"], ["lr=interval(0.1, 2)"], ["extra=interval(0, 1)"]):
        other = SearchSpace.parse({"lr": "interval(0.1, 1)", "bs": "choice(32, 64)"}, changed)
        key = changed[0].split("=")[0]
        with pytest.raises(DigitsError, match=rf"another space \(it differs in {key}\): "):
            check_same_space(again, ref, other.distributions)


def test_trials_whose_overrides_do_not_compose_fail_with_the_reason_and_are_not_retried() -> None:
    study = optuna.create_study(direction="maximize")
    space = SearchSpace.parse({"x": "interval(0, 1)"}, [])
    batch = [study.ask(space.distributions)]
    error = not_composed(study, batch, ConfigCompositionException("Could not override 'x'"))
    assert "trial 0: its overrides do not compose (Could not override 'x')" in str(error)
    (trial,) = study.get_trials()
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"].startswith("overrides do not compose")
    assert still_needed(study, n_trials=2) == 1  # counted, not queued again


def test_every_value_of_a_search_dimension_is_checked_against_the_model() -> None:
    space = SearchSpace.parse({"model.hidden": "choice(64, 128)"}, ["model=mlp"])
    with (
        initialize_config_dir(config_dir=config_dir(), version_base="1.3"),
        pytest.raises(DigitsError, match=r"search dimension model.hidden \(model=mlp\): "),
    ):
        check_dimensions(space, "mlp", lambda combo: compose("train", overrides=combo))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cnn", "lenet", "mlp", "lstm"])
def test_the_shipped_search_has_a_space_for_each_model(model: str) -> None:
    args = ["-m", "hparams_search=optuna", f"model={model}"]
    composed = check_command_line("train", args, None, check_search)
    assert composed is not None and composed.hydra.runtime.choices.model == model


def open_storage_at(url: str, start: float, answers: multiprocessing.Queue) -> None:
    while time.time() < start:  # both processes open the empty database at the same instant
        pass
    try:
        StudyRef(url, "raced").storage_with(heartbeat_interval=20, grace_period=60)
        answers.put("ok")
    except DigitsError as error:
        answers.put(str(error))


@pytest.mark.slow
def test_workers_started_together_on_an_empty_database_both_open_it(tmp_path: Path) -> None:
    # Without the retry most rounds fail here ('table trials already exists').
    context = multiprocessing.get_context("fork")
    for round_ in range(6):
        url = f"sqlite:///{tmp_path / f'{round_}.db'}"
        answers = context.Queue()
        start = time.time() + 1
        workers = [
            context.Process(target=open_storage_at, args=(url, start, answers)) for _ in "ab"
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert [answers.get(timeout=5) for _ in workers] == ["ok", "ok"]


@pytest.mark.parametrize(
    ("choice", "pruner"),
    [
        ([], optuna.pruners.MedianPruner),
        (["hydra/sweeper/pruner=hyperband"], optuna.pruners.HyperbandPruner),
        (["~hydra/sweeper/pruner"], optuna.pruners.NopPruner),
    ],
)
def test_the_pruner_is_chosen_in_the_config(choice: list[str], pruner: type) -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", ["hparams_search=optuna", *choice], return_hydra_config=True)
    assert isinstance(build_pruner(cfg.hydra.sweeper), pruner)


# --- whole searches ---------------------------------------------------------------------------


def sweep_dirs(cwd: Path) -> list[Path]:
    return sorted((cwd / "outputs" / "multiruns").iterdir())


def summary(sweep: Path) -> list[dict[str, str]]:
    with (sweep / "summary.csv").open() as handle:
        return list(csv.DictReader(handle))


def storage_args(storage: str, study: str, n_trials: int) -> list[str]:
    return [
        f"hydra.sweeper.storage={storage}",
        f"hydra.sweeper.study_name={study}",
        f"hydra.sweeper.n_trials={n_trials}",
    ]


@pytest.mark.slow
def test_a_search_prunes_fails_and_reports_the_best_trial_first(
    tmp_path: Path, data_root: Path
) -> None:
    # lr 1e-7 learns nothing by the first validation (pruned once a trial finished), 1e4 diverges
    # (failed: the loss is checked every step), 0.003 learns.
    result = run_cli(
        "digits.train",
        *QUICK,
        "optimizer.lr=choice(0.003, 0.0000001, 10000.0)",
        "callbacks.stop_on_divergence.every_n_steps=1",
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.pruner.n_startup_trials=1",
        cwd=tmp_path,
        data_root=data_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = sweep_dirs(tmp_path)
    rows = summary(sweep)
    states = [row["state"] for row in rows]
    assert len(rows) == 6 and {"complete", "pruned", "fail"} <= set(states)
    assert states == sorted(states, key=["complete", "pruned", "fail"].index)  # best first
    values = [float(row["value"]) for row in rows if row["state"] == "complete"]
    assert values == sorted(values, reverse=True)
    for row in rows:
        if row["state"] == "pruned":
            assert row["optimizer.lr"] == "1e-07" and int(row["epochs"]) < 3
        if row["state"] == "fail":
            assert row["optimizer.lr"] == "10000.0" and "loss" in row["reason"]
    assert "| trial | state | value | optimizer.lr |" in (sweep / "summary.md").read_text()
    for plot in ("optimization_history", "intermediate_values"):
        assert (sweep / f"{plot}.png").stat().st_size > 10_000

    # The best trial's command, run alone, gives the best value again.
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(values[0])
    assert best["trials"]["pruned"] >= 1 and best["trials"]["fail"] >= 1
    command = shlex.split(best["command"])
    assert command[:3] == ["python", "-m", "digits.train"] and command[-1] == "hydra.mode=RUN"
    again = run_cli(*command[2:], cwd=tmp_path, data_root=data_root)
    assert again.returncode == 0, again.stderr[-3000:]
    (run,) = (tmp_path / "outputs" / "runs").iterdir()
    rerun = json.loads((run / "metrics.json").read_text())
    assert rerun["val/acc_best"] == pytest.approx(best["best_value"], abs=1e-6)

    study = json.loads((sweep / "study.json").read_text())
    assert_dashboard_shows(study["storage"], study["name"], trials=6)


def assert_dashboard_shows(storage: str, name: str, trials: int) -> None:
    """optuna-dashboard, served on 127.0.0.1, lists the study with its trials."""
    url = f"http://127.0.0.1:{free_port()}"
    dashboard = Path(sys.executable).parent / "optuna-dashboard"  # installed beside python
    command = [str(dashboard), storage, "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1]]
    with serving(command, f"{url}/api/studies"):
        with urllib.request.urlopen(f"{url}/api/studies") as answer:
            (study,) = json.load(answer)["study_summaries"]
        assert study["study_name"] == name
        with urllib.request.urlopen(f"{url}/api/studies/{study['study_id']}") as answer:
            assert len(json.load(answer)["trials"]) == trials


def study_at(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def finished(storage: str, name: str) -> int:
    try:
        return sum(t.state.is_finished() for t in counted(study_at(storage, name)))
    except KeyError:  # not created yet
        return 0


@pytest.mark.slow
def test_a_stopped_search_continues_where_it_stopped(tmp_path: Path, data_root: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = [*QUICK, *storage_args(storage, "resumed", n_trials=5)]
    first = start_training(tmp_path, data_root, "-m", *args)
    deadline = time.monotonic() + 240
    while finished(storage, "resumed") < 2:
        assert first.poll() is None, first.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "two trials never finished"
        time.sleep(0.2)
    first.send_signal(signal.SIGTERM)
    output = first.communicate(timeout=120)[0]
    assert first.returncode == 143, output[-3000:]
    done_first = finished(storage, "resumed")
    assert 2 <= done_first < 5

    again = run_cli("digits.train", "-m", *args, cwd=tmp_path, data_root=data_root)
    assert again.returncode == 0, again.stderr[-3000:]
    study = study_at(storage, "resumed")
    trials = counted(study)
    assert len(trials) == 5
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    _, second_dir = sweep_dirs(tmp_path)
    ran_again = [p.name for p in second_dir.iterdir() if p.is_dir()]
    assert len(ran_again) == 5 - done_first  # only what was missing
    for trial in study.get_trials():  # an interrupted trial ran again, with the same values
        if trial.state == TrialState.FAIL:
            assert trial.user_attrs["fail_reason"] == "interrupted"
            assert trial.params in [t.params for t in trials]
    interrupted = [  # a rerun carries its original's user attributes (Optuna's retry copies them)
        t
        for t in study.get_trials()
        if t.state == TrialState.FAIL and t.user_attrs.get("fail_reason") == "interrupted"
    ]
    rows = summary(second_dir)  # every trial of the study, the interrupted ones too
    assert len(rows) == 5 + len(interrupted)
    assert sum(row["reason"] == "interrupted" for row in rows) == len(interrupted)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_n_jobs_runs_trials_in_parallel_processes_of_the_launcher(
    tmp_path: Path, data_root: Path, launcher: str
) -> None:
    storage = f"sqlite:///{tmp_path / 'parallel.db'}"
    args = [*QUICK, *storage_args(storage, "parallel", n_trials=4), "hydra.sweeper.n_jobs=2"]
    result = run_cli(
        "digits.train", "-m", *args, f"hydra/launcher={launcher}", cwd=tmp_path, data_root=data_root
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = counted(study_at(storage, "parallel"))
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    # Each trial's job, in a worker process, reported every epoch to the study for the pruner.
    assert all(sorted(t.intermediate_values) == [0, 1, 2] for t in trials)
    # The first batch's two jobs ran at the same time: each started before the other ended.
    first, second = (RunDir(Path(t.user_attrs["job_dir"])) for t in trials[:2])
    assert first.lock_file.stat().st_mtime < second.metrics_file.stat().st_mtime
    assert second.lock_file.stat().st_mtime < first.metrics_file.stat().st_mtime


def run_two_workers(tmp_path: Path, data_root: Path, storage: str, n_trials: int) -> list[Path]:
    """Two searches started together on one study; the sweep directory of each."""
    workers = []
    for name in ("a", "b"):
        cwd = tmp_path / name
        cwd.mkdir()
        args = [*QUICK, *storage_args(storage, "shared", n_trials)]
        workers.append((cwd, start_training(cwd, data_root, "-m", *args)))
    for _, worker in workers:
        output = worker.communicate(timeout=600)[0]
        assert worker.returncode == 0, output[-3000:]
    return [sweep_dirs(cwd)[0] for cwd, _ in workers]


def assert_shared_without_duplicates(storage: str, sweeps: list[Path], n_trials: int) -> None:
    trials = counted(study_at(storage, "shared"))
    assert len(trials) == n_trials and all(t.state.is_finished() for t in trials)
    jobs = [sorted(p.name for p in sweep.iterdir() if p.is_dir()) for sweep in sweeps]
    assert all(jobs), f"a worker ran no trial: {jobs}"
    assert sorted(jobs[0] + jobs[1], key=int) == [str(t.number) for t in trials]


@pytest.mark.slow
def test_two_workers_share_a_sqlite_study(tmp_path: Path, data_root: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    sweeps = run_two_workers(tmp_path, data_root, storage, n_trials=6)
    assert_shared_without_duplicates(storage, sweeps, n_trials=6)


@pytest.fixture
def postgres() -> str:
    """A fresh database on the PostgreSQL server DIGITS_TEST_POSTGRES names (.ci/run starts one)."""
    url = os.environ.get("DIGITS_TEST_POSTGRES")
    missing = pytest.fail if os.environ.get("CI") else pytest.skip  # CI starts one: never skip
    if not url:
        missing("no PostgreSQL server: run `bash tools/postgres.sh` and export what it prints")
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("DROP SCHEMA public CASCADE"))
            connection.execute(sqlalchemy.text("CREATE SCHEMA public"))
    except sqlalchemy.exc.OperationalError as error:
        missing(f"PostgreSQL at {url} unreachable: {str(error).splitlines()[0]}")
    finally:
        engine.dispose()
    return url


@pytest.mark.slow
def test_two_workers_share_a_postgresql_study(
    tmp_path: Path, data_root: Path, postgres: str
) -> None:
    sweeps = run_two_workers(tmp_path, data_root, postgres, n_trials=6)
    assert_shared_without_duplicates(postgres, sweeps, n_trials=6)


def test_hydra_finds_the_sweeper_without_importing_the_search() -> None:
    """Hydra imports every hydra_plugins module when any Hydra app starts: digits' must not make
    other apps import Optuna, torch or Lightning."""
    probe = (
        "import sys\n"
        "from hydra.core.plugins import Plugins\n"
        "from hydra.plugins.sweeper import Sweeper\n"
        "found = [s.__name__ for s in Plugins.instance().discover(Sweeper)]\n"
        "heavy = ('optuna', 'torch', 'lightning', 'digits.search.sweeper')\n"
        "print(found, [m for m in heavy if m in sys.modules])\n"
    )
    said = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert said.strip().endswith("[]"), said
    assert "'OptunaSweeper'" in said
