"""Bad input gets one clear line and exit 2; damaged data never trains; runs stop and resume safely."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import FAST, VAL_SIZE, run_cli, start_training
from digits.config.command_line import check_command_line
from digits.data.idx import check_raw_files, gunzip_raw_files
from digits.errors import DigitsError
from digits.runs import RunDir, holding
from digits.runs.writing import AtomicCheckpointIO
from digits.training.callbacks import LastCheckpoint, StopOnDivergence
from digits.training.checks import check_train

SHORT = [*FAST, "model=mlp", "trainer.max_epochs=1"]


@pytest.mark.parametrize(
    ("module", "args", "expected"),
    [
        ("digits.predict", ["images=[{empty}]"], "no image files there (.bmp"),
        ("digits.predict", ["images=[{image}]", "save_preprocessed={blocked}/x"], "cannot write"),
        ("digits.explore", ["out={blocked}/x"], "out={blocked}/x: cannot write there"),
        ("digits.train", ["hydra.run.dir={blocked}/x"], "hydra.run.dir={blocked}/x: cannot write"),
        ("digits.evaluate", ["split=train"], "split=train: use one of test, val"),
        # Lightning checks a callback's arguments only when the run builds it.
        (
            "digits.train",
            ["callbacks.model_checkpoint.save_top_k=-5"],
            "callbacks.model_checkpoint: Invalid value for save_top_k=-5. Must be >= -1",
        ),
    ],
)
@pytest.mark.slow
def test_bad_input_to_every_entry_point_is_one_line_in_a_subprocess(
    trained_run: Path, tmp_path: Path, module: str, args: list[str], expected: str
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "blocked").write_text("a file, not a folder")
    image = tmp_path / "digit.png"
    image.write_bytes(b"")
    names = {"empty": tmp_path / "empty", "image": image, "blocked": tmp_path / "blocked"}
    if module == "digits.predict":
        args = [f"ckpt_path={RunDir(trained_run).last_checkpoint}", *args]
    result = run_cli(module, *(a.format(**names) for a in args), cwd=tmp_path, data_root=None)
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and expected.format(**names) in line


def test_gpu_trainer_without_a_gpu_says_how_to_use_the_cpu(data_root: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DigitsError, match=r"no CUDA GPU is visible.*trainer=cpu"):
        check_command_line(
            "train",
            ["trainer=gpu", f"data.root={data_root}", f"data.val_size={VAL_SIZE}"],
            check_train,
        )


def test_checkpoint_of_another_project_or_model_is_refused(
    trained_run: Path, tmp_path: Path
) -> None:
    last = trained_run / "checkpoints" / "last.ckpt"
    with pytest.raises(DigitsError, match="holds a MLP network, not the selected LeNet"):
        check_command_line("train", ["model=lenet", f"ckpt_path={last}"], check_train)
    with pytest.raises(DigitsError, match=r"model.hidden=\[128, 84\] in the checkpoint, \[64\]"):
        check_command_line("train", ["model.hidden=[64]", f"ckpt_path={last}"], check_train)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"lr": 1}}, foreign)
    with pytest.raises(DigitsError, match="not a checkpoint of a digits model"):
        check_command_line("train", [f"ckpt_path={foreign}"], check_train)


@pytest.mark.slow
def test_cli_error_is_one_line_exit_2_and_full_trace_on_request(tmp_path: Path) -> None:
    result = run_cli("digits.train", "optimizer.lr=-1", cwd=tmp_path, data_root=None)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: optimizer.lr=-1: out of range, must be > 0"
    ]
    assert not (tmp_path / "outputs" / "runs").exists()  # stopped before anything started
    env = {**os.environ, "HYDRA_FULL_ERROR": "1", "DIGITS_OUTPUT_DIR": str(tmp_path / "o")}
    full = subprocess.run(
        [sys.executable, "-m", "digits.train", "optimizer.lr=-1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert full.returncode != 0 and "Traceback" in full.stderr


@pytest.mark.slow
def test_unwritable_output_folder_fails_at_start(tmp_path: Path, data_root: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env_dir = blocker / "outputs"  # a folder cannot be made inside a file, even by root
    result = subprocess.run(
        [sys.executable, "-m", "digits.train", *SHORT],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "DIGITS_OUTPUT_DIR": str(env_dir), "DIGITS_DATA_DIR": str(data_root)},
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert f"paths.log_dir={env_dir}: cannot write there" in line


@pytest.fixture
def damaged_raw(data_root: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(data_root, copy)
    return copy / "MNIST" / "raw"


@pytest.mark.parametrize(
    ("damage", "file", "problem"),
    [
        ("magic", "train-images-idx3-ubyte", "wrong magic number"),
        ("truncate", "t10k-images-idx3-ubyte", "but its header promises"),
        ("labels", "train-labels-idx1-ubyte", "labels for"),
        ("header", "t10k-labels-idx1-ubyte", "shorter than an IDX header"),
        ("label255", "train-labels-idx1-ubyte", "label 255 at item 12 is not a digit 0-9"),
    ],
)
def test_damaged_idx_files_are_named_with_the_problem(
    damaged_raw: Path, damage: str, file: str, problem: str
) -> None:
    path = damaged_raw / file
    data = path.read_bytes()
    if damage == "magic":
        path.write_bytes(b"\x00\x00\x08\x01" + data[4:])
    elif damage == "truncate":
        path.write_bytes(data[:-100])
    elif damage == "label255":
        path.write_bytes(data[:20] + b"\xff" + data[21:])
    elif damage == "labels":  # a consistent file with one label too few
        count = int.from_bytes(data[4:8], "big") - 1
        path.write_bytes(data[:4] + count.to_bytes(4, "big") + data[8:-1])
    else:
        path.write_bytes(data[:5])
    with pytest.raises(DigitsError) as error:
        check_raw_files(damaged_raw)
    message = str(error.value)
    assert message.startswith(str(path)) and problem in message and "delete it" in message


def test_gzip_only_files_are_decompressed_and_bad_gzip_is_named(damaged_raw: Path) -> None:
    good = damaged_raw / "t10k-labels-idx1-ubyte"
    original = good.read_bytes()
    good.with_name(good.name + ".gz").write_bytes(gzip.compress(original))
    good.unlink()
    gunzip_raw_files(damaged_raw)
    assert good.read_bytes() == original

    bad = damaged_raw / "train-images-idx3-ubyte"
    bad.unlink()
    (damaged_raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DigitsError, match="gzip does not decompress"):
        gunzip_raw_files(damaged_raw)
    assert not bad.exists()  # no half-written file left behind


def test_two_runs_decompressing_the_same_file_at_once_both_get_it_whole(
    damaged_raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two trainings started together on a folder of .gz files: the second decompresses while the
    first is half way (here: from inside the first's copy), and neither spoils the other's file."""
    good = damaged_raw / "t10k-labels-idx1-ubyte"
    original = good.read_bytes()
    good.with_name(good.name + ".gz").write_bytes(gzip.compress(original))
    good.unlink()
    real_copy, calls = shutil.copyfileobj, []

    def copy_meanwhile(source, sink, *args) -> None:
        calls.append(sink)
        sink.write(original[:100])
        if len(calls) == 1:
            gunzip_raw_files(damaged_raw)  # the other run, start to end
        source.read(100)
        real_copy(source, sink, *args)

    monkeypatch.setattr(shutil, "copyfileobj", copy_meanwhile)
    gunzip_raw_files(damaged_raw)
    assert len(calls) == 2 and good.read_bytes() == original
    assert sorted(p.name for p in damaged_raw.iterdir() if "t10k-labels" in p.name) == [
        "t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte.gz"]  # fmt: skip


def test_gzip_files_in_a_folder_that_cannot_be_written_are_not_called_damaged(
    damaged_raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = damaged_raw / "t10k-labels-idx1-ubyte"
    good.with_name(good.name + ".gz").write_bytes(gzip.compress(good.read_bytes()))
    good.unlink()
    real_open = Path.open

    def read_only(self: Path, mode: str = "r", *args, **kwargs):
        if "w" in mode or "x" in mode:
            raise PermissionError(13, "Permission denied")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", read_only)  # root writes anywhere: pretend it cannot
    with pytest.raises(DigitsError) as error:
        gunzip_raw_files(damaged_raw)
    message = str(error.value)
    assert "cannot write the decompressed t10k-labels-idx1-ubyte there" in message
    assert "delete" not in message


def test_damaged_data_stops_the_cli_before_training(damaged_raw: Path, tmp_path: Path) -> None:
    target = damaged_raw / "train-labels-idx1-ubyte"
    target.write_bytes(target.read_bytes()[:-10])
    result = run_cli("digits.train", *SHORT, cwd=tmp_path, data_root=damaged_raw.parents[1])
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert str(target) in line and "Traceback" not in result.stderr
    assert not list((tmp_path / "outputs").rglob("*.ckpt"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("optimizer", "lr", "problem"),
    [("sgd", "1e12", "training loss is nan"), ("adam", "1e6", "over 100 times its first value")],
)
def test_diverging_loss_stops_with_the_step(
    tmp_path: Path, data_root: Path, optimizer: str, lr: str, problem: str
) -> None:
    result = run_cli(
        "digits.train",
        *SHORT,
        f"optimizer={optimizer}",
        f"optimizer.lr={lr}",
        "logger=none",
        cwd=tmp_path,
        data_root=data_root,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert problem in line and "by step" in line and "optimizer.lr" in line
    assert "metrics.json" not in {p.name for p in (tmp_path / "outputs").rglob("*")}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs: another filesystem than the temp folder's, and one that fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_checkpoint_writes_are_atomic_on_another_filesystem(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = small_disk / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "weights": torch.ones(1000)}, path)
    before = path.read_bytes()
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: renames.append((a, b)) or real_replace(a, b))
    io.save_checkpoint({"step": 2, "weights": torch.ones(1000)}, path)
    ((source, target),) = renames
    assert Path(source).parent == path.parent and Path(target) == path  # written beside it

    class DyingFile:  # the process is interrupted half-way through writing the file
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(bytes(data)[: len(data) // 2])
            raise KeyboardInterrupt

        def __getattr__(self, name):
            return getattr(self.handle, name)

    second = path.read_bytes()
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: DyingFile(real_open(self, *a, **k)))
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 3, "weights": torch.zeros(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == second != before
    assert torch.load(path, weights_only=True)["step"] == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # nothing half-written


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so(small_disk: Path) -> None:
    path = small_disk / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "weights": torch.ones(1000)}, path)
    with pytest.raises(DigitsError) as error:
        io.save_checkpoint({"step": 2, "weights": torch.ones(1_000_000)}, path)  # 4 MB
    assert str(error.value).startswith(f"{path}: could not write the checkpoint (No space left")
    assert "previous one is kept" in str(error.value) and "\n" not in str(error.value)
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in small_disk.iterdir()] == ["last.ckpt"]


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_tensorboard_figures_onto_a_full_disk_are_one_error_and_no_event_file(
    small_disk: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """evaluate's and explore's figures: TensorBoard's writer thread meets the full disk; the
    command says so once, with no thread traceback, and leaves no half event file."""
    import matplotlib.pyplot as plt
    import numpy as np

    from digits.presentation.figures import figures_to_tensorboard

    figure, axes = plt.subplots(figsize=(20, 20), dpi=100)
    axes.imshow(np.random.default_rng(0).random((500, 500)))  # ~2 MB of PNG: past the 1 MB disk
    folder = small_disk / "tensorboard"
    with pytest.raises(DigitsError) as error:
        figures_to_tensorboard(folder, {"noise": figure})
    plt.close(figure)
    assert str(error.value).startswith(f"{folder}: could not write the TensorBoard figures (No")
    assert list(folder.iterdir()) == []
    assert "Traceback" not in capfd.readouterr().err


def test_training_onto_a_full_disk_stops_with_one_line(
    small_disk: Path, tmp_path: Path, data_root: Path
) -> None:
    # The default mlp's checkpoint (~1.3 MB with Adam's state) does not fit on the 1 MB disk.
    result = run_cli(
        "digits.train",
        *SHORT,
        "logger=none",
        f"hydra.run.dir={small_disk / 'run'}",
        cwd=tmp_path,
        data_root=data_root,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert "could not write the checkpoint (No space left on device)" in line
    assert not list(small_disk.rglob("*.partial"))


@pytest.mark.slow
def test_resuming_a_finished_run_changes_nothing_and_training_longer_continues(
    tmp_path: Path, data_root: Path
) -> None:
    first = run_cli(
        "digits.train",
        *SHORT,
        "logger=none",
        "hydra.run.dir=outputs/runs/done",
        cwd=tmp_path,
        data_root=data_root,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    run = RunDir(tmp_path / "outputs" / "runs" / "done")
    steps = run.metrics()["global_step"]
    files = {p: p.stat().st_mtime_ns for p in run.path.rglob("*")}

    again = run_cli("digits.train", f"resume={run.path}", cwd=tmp_path, data_root=data_root)
    assert again.returncode == 2
    (line,) = again.stderr.strip().splitlines()
    assert f"resume={run.path}: the run has already trained 1 epoch" in line
    assert "raise trainer.max_epochs" in line
    assert {p: p.stat().st_mtime_ns for p in run.path.rglob("*")} == files  # nothing touched

    longer = run_cli(
        "digits.train",
        f"resume={run.path}",
        "trainer.max_epochs=2",
        cwd=tmp_path,
        data_root=data_root,
    )
    assert longer.returncode == 0, longer.stderr[-3000:]
    metrics = run.metrics()
    assert (metrics["epochs"], metrics["global_step"]) == (2, 2 * steps)
    for key in ("train/loss_epoch", "val/acc", "val/acc_best", "test/acc"):
        assert isinstance(metrics[key], float), key
    (best,) = run.checkpoints.glob("epoch*.ckpt")  # exactly one best, the recorded one
    assert run.best_checkpoint() == best


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 1), (signal.SIGTERM, 143)])
def test_interrupt_saves_a_checkpoint_and_resume_continues_in_place(
    tmp_path: Path, data_root: Path, sig: signal.Signals, code: int
) -> None:
    args = [*FAST, "model=mlp", "data.batch_size=8", "trainer.max_epochs=6"]
    process = start_training(tmp_path, data_root, *args, "hydra.run.dir=outputs/runs/interrupted")
    run_dir = tmp_path / "outputs" / "runs" / "interrupted"
    wait_for(run_dir / "checkpoints" / "last.ckpt", process)
    first_epoch_step = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)[
        "global_step"
    ]
    time.sleep(1.0)
    process.send_signal(sig)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == code, output[-3000:]
    assert f"resume={run_dir}" in output
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["global_step"] > first_epoch_step  # saved at the step it stopped, not the epoch
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert (manifest["status"], manifest["exit_status"]) == ("interrupted", code)

    resumed = run_cli("digits.train", f"resume={run_dir}", cwd=tmp_path, data_root=data_root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [p.name for p in (tmp_path / "outputs" / "runs").iterdir()] == ["interrupted"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 6
    steps_per_epoch = -(-1000 // 8)
    assert metrics["global_step"] == 6 * steps_per_epoch
    event_files = list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert len({p.parent for p in event_files}) == 1 and len(event_files) >= 2


@pytest.mark.slow
def test_a_run_directory_belongs_to_one_live_run(tmp_path: Path, data_root: Path) -> None:
    args = [*FAST, "model=mlp", "data.batch_size=8", "trainer.max_epochs=50", "logger=none"]
    first = start_training(tmp_path, data_root, *args, "hydra.run.dir=outputs/runs/mine")
    run = RunDir(tmp_path / "outputs" / "runs" / "mine")
    wait_for(run.last_checkpoint, first)
    config = (run.path / ".hydra" / "config.yaml").stat().st_mtime_ns
    second = run_cli(
        "digits.train", *SHORT, "hydra.run.dir=outputs/runs/mine", cwd=tmp_path, data_root=data_root
    )
    assert second.returncode == 2
    (line,) = second.stderr.strip().splitlines()
    assert f"hydra.run.dir=outputs/runs/mine: another run (pid {first.pid}" in line
    assert (run.path / ".hydra" / "config.yaml").stat().st_mtime_ns == config  # untouched
    first.send_signal(signal.SIGKILL)
    first.wait()
    holding.check_free(run)  # the lock died with its process: resume= may take the directory


@pytest.mark.slow
def test_runs_started_in_the_same_second_get_their_own_directories(
    tmp_path: Path, data_root: Path
) -> None:
    runs = [start_training(tmp_path, data_root, *SHORT, "logger=none") for _ in range(2)]
    for process in runs:
        assert process.wait(timeout=300) == 0, process.communicate()[0][-3000:]
    assert len(list((tmp_path / "outputs" / "runs").iterdir())) == 2


def kill_when(process: subprocess.Popen, run: RunDir, target: int | str, delay: float) -> None:
    """SIGKILL once last.ckpt holds `target` steps (or, for "test", once the test pass loads the
    best checkpoint), `delay` seconds later: inside a step, a checkpoint save or the test pass."""
    log = run.path / "train.log"
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if target == "test":
            reached = log.is_file() and "Restoring states from the checkpoint" in log.read_text()
        else:
            try:
                reached = (
                    torch.load(run.last_checkpoint, weights_only=True)["global_step"] >= target
                )
            except (FileNotFoundError, RuntimeError, EOFError):  # not there yet / being replaced
                reached = False
        if reached:
            time.sleep(delay)
            break
        time.sleep(0.01)
    process.kill()
    process.wait()


@pytest.mark.slow
def test_killed_at_random_points_a_run_resumes_to_the_uninterrupted_result(
    tmp_path: Path, data_root: Path
) -> None:
    """kill -9 inside steps, checkpoint saves and the test pass: `resume=` finishes the run with the
    metrics and weights of a run never interrupted (deterministic on the CPU; the cnn: dropout's
    random state and the loader's order restored mid-epoch)."""
    args = [
        *FAST,
        "model=cnn",
        "data.batch_size=16",
        "trainer.max_epochs=2",
        "logger=none",
        "trainer.deterministic=true",
        "callbacks.last_checkpoint.every_n_train_steps=5",
        "seed=3",
    ]
    whole = run_cli(
        "digits.train", *args, "hydra.run.dir=outputs/whole", cwd=tmp_path, data_root=data_root
    )
    assert whole.returncode == 0, whole.stderr[-3000:]
    expected = RunDir(tmp_path / "outputs" / "whole")
    want = expected.metrics()
    rng = random.Random(7)
    # Two kills (each a start and a resume, ~20 s on CI): at a random step (a save, every 5th, is
    # as likely to be hit as any step), then in the test pass.
    targets = [rng.randrange(1, want["global_step"]), "test"]
    for attempt, target in enumerate(targets):
        run = RunDir(tmp_path / "outputs" / f"killed{attempt}")
        process = start_training(tmp_path, data_root, *args, f"hydra.run.dir={run.path}")
        kill_when(process, run, target, rng.uniform(0, 0.05))
        assert not run.metrics_file.is_file(), f"attempt {attempt} ({target}) finished first"
        resumed = run_cli("digits.train", f"resume={run.path}", cwd=tmp_path, data_root=data_root)
        assert resumed.returncode == 0, (target, resumed.stderr[-3000:])
        got = run.metrics()
        for key in (
            "train/loss_epoch",
            "train/acc",
            "val/loss",
            "val/acc",
            "test/loss",
            "test/acc",
        ):
            assert got.get(key) == pytest.approx(want[key], abs=1e-6), (target, key)
        assert got["global_step"] == want["global_step"], target
        final = torch.load(run.last_checkpoint, weights_only=True)["state_dict"]
        reference = torch.load(expected.last_checkpoint, weights_only=True)["state_dict"]
        assert all(torch.equal(final[name], reference[name]) for name in reference), target
        assert len(list(run.checkpoints.glob("epoch*.ckpt"))) == 1, target


def test_divergence_is_judged_against_the_first_loss_of_the_run_even_after_resume() -> None:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    trainer = SimpleNamespace(global_step=0, current_epoch=0, optimizers=[optimizer], callbacks=[])
    first = StopOnDivergence(every_n_steps=1, max_growth=100)
    first.on_train_batch_end(trainer, None, torch.tensor(2.3), None, 0)
    resumed = StopOnDivergence(every_n_steps=1, max_growth=100)
    resumed.load_state_dict(first.state_dict())  # what a checkpoint carries over
    trainer.global_step = 500
    resumed.on_train_batch_end(trainer, None, torch.tensor(1.5), None, 0)  # noisy, not diverged
    with pytest.raises(DigitsError, match=r"loss is 300 by step 500 .*over 100 times .*\(2\.3\)"):
        resumed.on_train_batch_end(trainer, None, torch.tensor(300.0), None, 0)


def test_divergence_says_which_checkpoint_is_on_disk(tmp_path: Path) -> None:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e9)
    last = LastCheckpoint(str(tmp_path), every_n_train_steps=0)
    trainer = SimpleNamespace(
        global_step=0, current_epoch=0, optimizers=[optimizer], callbacks=[last]
    )
    stop = StopOnDivergence(every_n_steps=1, max_growth=100)
    stop.on_train_batch_end(trainer, None, torch.tensor(2.3), None, 0)
    trainer.global_step = 20
    with pytest.raises(DigitsError, match=r"no checkpoint was saved before it$"):
        stop.on_train_batch_end(trainer, None, torch.tensor(float("inf")), None, 0)
    last.run.checkpoints.mkdir()
    torch.save({"global_step": 10}, last.run.last_checkpoint)
    with pytest.raises(DigitsError, match=r"last\.ckpt holds step 10, saved before it$"):
        stop.on_train_batch_end(trainer, None, torch.tensor(float("nan")), None, 0)
