"""`python -m digits.train` end to end in subprocesses: run directories, multirun, resume, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import FAST, run_cli
from digits.config import config_dir
from digits.config.hydra_flags import override
from digits.data.idx import load_mnist
from digits.evaluation.scoring import predict_split
from digits.models.calibration import fit_temperature
from digits.runs import RunDir
from digits.runs.per_image import PerImageResults
from digits.training.argv import resume_arguments

SHORT = [*FAST, "trainer.max_epochs=2", "model=mlp"]


def only_dir(parent: Path) -> Path:
    (child,) = [p for p in parent.iterdir() if p.is_dir()]
    return child


def check_ok(result) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


def test_train_run_directory_holds_everything(tmp_path: Path, data_root: Path) -> None:
    result = run_cli("digits.train", *SHORT, "optimizer=sgd", cwd=tmp_path, data_root=data_root)
    check_ok(result)
    run_dir = only_dir(tmp_path / "outputs" / "runs")
    assert str(run_dir) in result.stdout  # the closing summary says where the run is

    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert "optimizer=sgd" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    log_text = (run_dir / "train.log").read_text()
    assert f"run directory: {run_dir}" in log_text and "Trainer.fit" in log_text
    # The notes (INFO: digits' own and Lightning's tip, limit_*_batches, devices) go to the log,
    # not the console; the final metrics are in metrics.json and the closing table only.
    console = result.stdout + result.stderr
    for note in ("Tip:", "was configured so", "GPU available"):
        assert note in log_text and note not in console, note
    assert "[INFO]" not in console and "final metrics" not in log_text + console
    # The progress bar leaves out the logger's version; the model summary counts FLOPs.
    assert "v_num" not in console and "Total FLOPs: 0 " not in console

    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints and any(n.startswith("epoch") for n in checkpoints)

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 2
    for key in ("train/loss_epoch", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc"):
        assert isinstance(metrics[key], float)
    assert metrics["wall_time_s"] > 0

    # The run is named after what it trained, so sweeps can be told apart in TensorBoard.
    events = EventAccumulator(str(run_dir / "tensorboard" / "mlp-sgd"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss_step", "train/loss_epoch", "val/acc", "val/loss", "train/lr-SGD"} <= tags
    hparam_runs = [p for p in (run_dir / "tensorboard").rglob("events.out.tfevents.*")]
    assert hparam_runs
    assert any(b"_hparams_/session_start_info" in p.read_bytes() for p in hparam_runs)


@pytest.mark.slow
def test_multirun_puts_each_job_in_its_own_directory(tmp_path: Path, data_root: Path) -> None:
    result = run_cli(
        "digits.train",
        "-m",
        *SHORT,
        "model=mlp,lenet",
        "logger=none",
        cwd=tmp_path,
        data_root=data_root,
    )
    check_ok(result)
    sweep = only_dir(tmp_path / "outputs" / "multiruns")
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    for job, model in zip(jobs, ["mlp", "lenet"], strict=True):
        assert f"model={model}" in (sweep / job / ".hydra" / "overrides.yaml").read_text()
        assert json.loads((sweep / job / "metrics.json").read_text())["epochs"] == 2


@pytest.mark.slow
def test_resume_from_last_checkpoint_continues_at_the_right_epoch(
    tmp_path: Path, data_root: Path
) -> None:
    first = run_cli("digits.train", *SHORT, "logger=none", cwd=tmp_path, data_root=data_root)
    check_ok(first)
    run_dir = only_dir(tmp_path / "outputs" / "runs")
    steps_per_run = json.loads((run_dir / "metrics.json").read_text())["global_step"]
    last = run_dir / "checkpoints" / "last.ckpt"

    resumed = run_cli(
        "digits.train",
        *SHORT,
        "trainer.max_epochs=3",
        f"ckpt_path={last}",
        "logger=none",
        "hydra.run.dir=outputs/resumed",
        cwd=tmp_path,
        data_root=data_root,
    )
    check_ok(resumed)
    metrics = json.loads((tmp_path / "outputs" / "resumed" / "metrics.json").read_text())
    assert metrics["epochs"] == 3
    assert metrics["global_step"] == steps_per_run // 2 * 3  # one more epoch, not three
    log = (tmp_path / "outputs" / "resumed" / "train.log").read_text()
    assert "Restoring states from the checkpoint" in log  # Lightning's notes go to the run's log


def test_missing_data_is_one_clear_line(tmp_path: Path) -> None:
    empty = tmp_path / "nowhere"
    result = run_cli("digits.train", *SHORT, f"data.root={empty}", cwd=tmp_path, data_root=None)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert (result.stdout + result.stderr).count("MNIST not found") == 1  # said once
    assert str(empty / "MNIST" / "raw") in line
    for name in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "DIGITS_DATA_DIR"):
        assert name in line


def test_help_lists_groups_and_options(tmp_path: Path) -> None:
    result = run_cli("digits.train", "--help", cwd=tmp_path, data_root=None)
    check_ok(result)
    assert "model: cnn, crnn, lenet, lstm, mlp" in result.stdout
    assert "optimizer: adam, sgd" in result.stdout
    assert "scheduler: cosine, none, onecycle, step" in result.stdout
    assert "adaptation:" not in result.stdout  # digits.adapt's group, not train's


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "groups"),
    [
        ("evaluate", ["trainer", "data"]),  # data: another data option to score on
        ("predict", ["trainer"]),
        ("explore", ["data"]),
        ("serve", []),
        ("export", []),
        ("adapt", ["data", "optimizer", "trainer", "logger", "callbacks", "paths", "adaptation"]),
    ],
)
def test_help_of_each_command_lists_only_the_groups_it_takes(
    tmp_path: Path, command: str, groups: list[str]
) -> None:
    result = run_cli(f"digits.{command}", "--help", cwd=tmp_path, data_root=None)
    check_ok(result)
    listed = result.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    assert [line.split(":")[0] for line in listed.strip().splitlines() if ": " in line] == groups
    assert f"python -m digits.{command}" in result.stdout
    for training_group in ("optimizer:", "experiment:", "hparams_search:"):
        assert training_group not in result.stdout or training_group[:-1] in groups


@pytest.mark.slow
def test_ddp_on_cpu_with_two_processes_writes_one_run_directory(
    tmp_path: Path, data_root: Path
) -> None:
    # Under a folder with a space, an accent and CJK: Lightning starts the second process with the
    # run directory on its command line.
    work = tmp_path / "dossier é 結果"
    work.mkdir()
    result = run_cli(
        "digits.train",
        *SHORT,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "logger=none",
        cwd=work,
        data_root=data_root,
        timeout=600,
    )
    check_ok(result)
    run_dir = only_dir(work / "outputs" / "runs")  # exactly one directory
    assert "distributed_backend=gloo" in (run_dir / "train.log").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # Two processes split each epoch: half the steps of a single-process run.
    train_images = 1200 - 200
    assert metrics["global_step"] == 2 * -(-train_images // (64 * 2))
    assert metrics["test/acc"] > 0.5
    # Each process tested half the images; gathered, they are the test set in its order.
    results = PerImageResults.read(RunDir(run_dir).test_predictions_file)
    assert np.array_equal(results.labels, load_mnist(data_root, train=False)[1].numpy())
    assert metrics["test/correct"] == int(results.correct.sum())
    # Both processes' validation logits went into the temperature: refitting it on the whole
    # validation split in one process gives the same value.
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            "evaluate", overrides=[override("run", run_dir), f"data.root={data_root}", "split=val"]
        )
    split = predict_split(cfg, Path(metrics["best_checkpoint"]))
    assert split.temperature != 1.0
    assert fit_temperature(split.logits, split.labels) == pytest.approx(split.temperature, rel=0.02)


@pytest.mark.slow
@pytest.mark.real_data
def test_mlp_reaches_95_percent_on_real_mnist_in_one_epoch(real_mnist_run: Path) -> None:
    metrics = json.loads((real_mnist_run / "metrics.json").read_text())
    assert metrics["epochs"] == 1
    assert metrics["test/acc"] >= 0.95, metrics


def test_resume_of_a_run_made_before_settings_moved_uses_their_new_keys(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "old-run")
    run.overrides_file.parent.mkdir(parents=True)
    run.overrides_file.write_text("- model=cnn\n- label_smoothing=0.1\n- data.mean=0.5\n")
    run.checkpoints.mkdir()
    run.last_checkpoint.write_bytes(b"")
    args = resume_arguments([f"resume={run.path}", "trainer.max_epochs=5"])
    assert args == [
        "model=cnn",
        "module.label_smoothing=0.1",
        "module.mean=0.5",
        "trainer.max_epochs=5",
        f"resume='{run.path}'",
        f"ckpt_path='{run.last_checkpoint}'",
        f"hydra.run.dir='{run.path}'",
    ]


COMMANDS = ("train", "adapt", "evaluate", "predict", "explore", "export", "serve", "compare")


def test_every_command_has_a_console_script_that_runs_it() -> None:
    import subprocess
    import sys
    from importlib import import_module
    from importlib.metadata import entry_points

    scripts = {
        e.name: e.value
        for e in entry_points(group="console_scripts")
        if e.name.startswith("digits-")
    }
    assert scripts == {f"digits-{name}": f"digits.{name}:main" for name in COMMANDS}
    assert all(callable(import_module(f"digits.{name}").main) for name in COMMANDS)
    script = Path(sys.executable).parent / "digits-evaluate"
    shown = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "evaluate" in shown.stdout
