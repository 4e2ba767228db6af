"""A run's results are never lost: no new run writes into a directory that holds one (overwrite=true
moves it aside), two runs started at once into one directory leave the winner's files alone, and
reproduce= notices a .hydra/ folder that no longer says what the run was. Also the edges that used to
end in tracebacks: failed multirun jobs, read-only folders, compare's damaged runs."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import FAST, run_cli, start_training
from digits.runs import RunDir, SweepDir

SHORT = [*FAST, "trainer.max_epochs=1", "trainer.limit_train_batches=5", "logger=none"]


def file_digests(folder: Path) -> dict[str, str]:
    """Every file under `folder` (by its path inside it) and the MD5 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.slow
def test_a_new_run_into_a_finished_runs_directory_is_refused_and_overwrite_moves_it_aside(
    tmp_path: Path, data_root: Path
) -> None:
    first = run_cli(
        "digits.train", *SHORT, "model=mlp", "hydra.run.dir=outputs/run", cwd=tmp_path,
        data_root=data_root,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "outputs" / "run"
    before = file_digests(run)

    second = run_cli(
        "digits.train", *SHORT, "model=lenet", "hydra.run.dir=outputs/run", cwd=tmp_path,
        data_root=data_root,
    )  # fmt: skip
    assert second.returncode == 2
    (line,) = second.stderr.strip().splitlines()
    assert line.startswith("error: hydra.run.dir=outputs/run: holds a run already (completed)")
    assert file_digests(run) == before  # byte for byte, the lock file too

    replaced = run_cli(
        "digits.train", *SHORT, "model=lenet", "hydra.run.dir=outputs/run", "overwrite=true",
        cwd=tmp_path, data_root=data_root,
    )  # fmt: skip
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    (aside,) = (tmp_path / "outputs").glob("run.replaced-*")
    assert f"moved the run that was in outputs/run to outputs/{aside.name}" in replaced.stdout
    moved = file_digests(aside)
    assert {name: digest for name, digest in moved.items() if name != ".lock"} == {
        name: digest for name, digest in before.items() if name != ".lock"
    }
    assert "LeNet" in json.dumps(RunDir(run).manifest()["settings"])
    assert RunDir(run).metrics() is not None and not (run / "evaluation").exists()


@pytest.mark.slow
def test_two_trainings_started_at_once_into_one_directory_leave_the_winners_files(
    tmp_path: Path, data_root: Path
) -> None:
    seeds = (11, 22)
    processes = [
        start_training(tmp_path, data_root, *SHORT, f"seed={seed}", "hydra.run.dir=outputs/one")
        for seed in seeds
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    codes = [process.returncode for process in processes]
    assert sorted(codes) == [0, 2], outputs
    winner = seeds[codes.index(0)]
    loser_output = outputs[codes.index(2)]
    errors = [line for line in loser_output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in loser_output
    assert "hydra.run.dir=outputs/one" in errors[0]
    run = RunDir(tmp_path / "outputs" / "one")
    assert f"seed={winner}" in run.overrides()
    assert run.settings()["seed"] == str(winner)
    assert run.manifest()["seed"] == winner and run.manifest()["settings"] == run.settings()


@pytest.mark.slow
def test_reproduce_warns_when_the_hydra_folder_no_longer_matches_the_manifest(
    tmp_path: Path, data_root: Path
) -> None:
    args = [*SHORT, "seed=5", "hydra.run.dir=outputs/runs/original"]
    assert run_cli("digits.train", *args, cwd=tmp_path, data_root=data_root).returncode == 0
    original = RunDir(tmp_path / "outputs" / "runs" / "original")
    for path in (original.overrides_file, original.config_file):  # as another run would write them
        path.write_text(path.read_text().replace("seed=5", "seed=6").replace("seed: 5", "seed: 6"))

    again = run_cli("digits.train", f"reproduce={original.path}", cwd=tmp_path, data_root=data_root)
    assert again.returncode == 0, again.stderr[-3000:]
    (rerun,) = [p for p in (tmp_path / "outputs" / "runs").iterdir() if p.name != "original"]
    warnings = json.loads(RunDir(rerun).reproduction_file.read_text())["warnings"]
    assert any("does not match its manifest.json (seed" in warning for warning in warnings)
    assert "setting seed: 5 then, 6 now" in warnings  # from what the original recorded running


@pytest.mark.slow
def test_a_multirun_whose_job_fails_exits_1_after_its_summary_without_a_traceback(
    tmp_path: Path, data_root: Path
) -> None:
    result = run_cli(
        "digits.train", "-m", *SHORT, "optimizer.lr=0.001,1000000000.0",
        "callbacks.stop_on_divergence.every_n_steps=1", "hydra.sweep.dir=outputs/sweep",
        cwd=tmp_path, data_root=data_root,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert "summary: outputs/sweep/summary.md" in result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: 1 of 2 jobs failed (job 1: training loss is")
    assert "Traceback" in (tmp_path / "outputs" / "sweep" / "1" / "train.log").read_text()

    again = run_cli(
        "digits.train", "-m", *SHORT, "seed=1,2", "hydra.sweep.dir=outputs/sweep",
        cwd=tmp_path, data_root=data_root,
    )  # fmt: skip
    assert again.returncode == 2
    assert "hydra.sweep.dir=outputs/sweep: holds a multirun's jobs already (0, 1)" in again.stderr


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    """Make folders read-only even for root (chattr +i); undone afterwards."""
    made: list[Path] = []

    def protect(folder: Path) -> Path:
        if shutil.which("chattr") is None:
            pytest.skip("chattr not found")
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"chattr +i not supported here: {done.stderr.decode().strip()}")
        made.append(folder)
        return folder

    yield protect
    for folder in made:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


def test_evaluating_a_read_only_run_is_refused_before_scoring(
    trained_run: Path, tmp_path: Path, data_root: Path, read_only: Callable[[Path], Path]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    shutil.rmtree(run / "tensorboard", ignore_errors=True)
    read_only(run)
    result = run_cli("digits.evaluate", f"run={run}", cwd=tmp_path, data_root=data_root)
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: run={run}: cannot write there") and "evaluate writes" in line


def test_compare_into_a_read_only_folder_is_one_line(
    trained_run: Path, tmp_path: Path, read_only: Callable[[Path], Path]
) -> None:
    (tmp_path / "locked").mkdir()
    locked = read_only(tmp_path / "locked")
    result = run_cli(
        "digits.compare", str(trained_run), str(trained_run.parent), "--out", str(locked / "x"),
        cwd=tmp_path, data_root=None,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert f"--out={locked / 'x'}: cannot write there" in line


def test_evaluate_with_missing_data_names_data_root_and_leaves_no_folders(
    trained_run: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "data"
    result = run_cli(
        "digits.evaluate", f"run={trained_run}", f"data.root={missing}", "tensorboard=false",
        cwd=tmp_path, data_root=None,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    # data.root, as train spells it (evaluate once said data_root)
    assert f"MNIST not found: {missing}/MNIST/raw lacks" in line
    assert "point data.root (or DIGITS_DATA_DIR)" in line and "data_root" not in line
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.slow
def test_any_path_a_user_can_type_works_for_training_resuming_and_exporting(
    tmp_path: Path, data_root: Path
) -> None:
    """An output root with spaces, accents and CJK (DIGITS_OUTPUT_DIR), a quoted run directory
    and export output like it: digits adds them to Hydra's command line quoted."""
    cwd = tmp_path / "dossier é 結果"
    cwd.mkdir()
    by_env = run_cli("digits.train", *SHORT, cwd=cwd, data_root=data_root)
    assert by_env.returncode == 0, by_env.stderr[-3000:]
    (run,) = (cwd / "outputs" / "runs").iterdir()
    assert RunDir(run).metrics() is not None

    quoted = cwd / "a b ü" / "run, one"
    args = [*FAST, "trainer.limit_train_batches=5", "logger=tensorboard"]
    first = run_cli("digits.train", *args, "trainer.max_epochs=1", f'hydra.run.dir="{quoted}"',
                    cwd=cwd, data_root=data_root)  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_cli("digits.train", "trainer.max_epochs=2", f"resume='{quoted}'", cwd=cwd,
                      data_root=data_root)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert RunDir(quoted).metrics()["epochs"] == 2
    assert len(list(RunDir(quoted).tensorboard.iterdir())) == 1  # one run name, continued

    exported = cwd / "modèle é" / "m 1.onnx"
    export = run_cli("digits.export", f"run='{quoted}'", f'output="{exported}"', cwd=cwd,
                     data_root=data_root)  # fmt: skip
    assert export.returncode == 0, export.stderr[-3000:]
    assert exported.is_file()


@pytest.fixture(scope="module")
def finished_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder a finished one-epoch run was trained in (its run directory: outputs/run)."""
    cwd = tmp_path_factory.mktemp("finished")
    done = run_cli("digits.train", *SHORT, "hydra.run.dir=outputs/run", cwd=cwd,
                   data_root=data_root)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (cwd / "more-conf").mkdir()  # a --config-dir adding its own experiment option
    (cwd / "more-conf" / "experiment").mkdir()
    (cwd / "more-conf" / "experiment" / "mine.yaml").write_text("# @package _global_\nseed: 7\n")
    return cwd


ROUTES_INTO_A_FINISHED_RUN = [
    (["--config-dir", "{cwd}/more-conf", "experiment=mine", "hydra.run.dir={run}"],
     "hydra.run.dir={run}: holds a run already"),
    (["--config-name", "train", "hydra.run.dir={run}"], "hydra.run.dir={run}: holds a run already"),
    (["-m", "seed=1,2", "hydra.sweep.subdir=same"], "hydra.sweep.subdir=same: each job needs a folder of its own"),
    (["-m", "seed=1,2", "hydra.sweep.subdir={run}"], "hydra.sweep.subdir={run}: each job needs a folder of its own"),
    (["-m", "seed=1,2", "hydra.sweep.dir={run}"], "hydra.sweep.dir={run}: a single run's directory, not a sweep's"),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("route", "refusal"), ROUTES_INTO_A_FINISHED_RUN)
def test_no_route_writes_into_a_finished_run(
    finished_run: Path, data_root: Path, route: list[str], refusal: str
) -> None:
    run = finished_run / "outputs" / "run"
    before = file_digests(run)
    args = [a.replace("{run}", str(run)).replace("{cwd}", str(finished_run)) for a in route]
    refused = run_cli("digits.train", *args, *SHORT, cwd=finished_run, data_root=data_root)
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("error: ") and refusal.replace("{run}", str(run)) in line
    assert file_digests(run) == before  # byte for byte, the lock file too
    assert not (finished_run / "outputs" / "multiruns").exists()


@pytest.mark.slow
def test_two_multiruns_into_one_sweep_folder_one_wins_the_other_writes_nothing(
    tmp_path: Path, data_root: Path
) -> None:
    processes = [
        start_training(tmp_path, data_root, "-m", *SHORT, f"seed={a},{b}", "hydra.sweep.dir=sweep")
        for a, b in ((1, 2), (3, 4))
    ]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    codes = [process.returncode for process in processes]
    assert sorted(codes) == [0, 2], outputs
    loser = outputs[codes.index(2)]
    assert [line for line in loser.splitlines() if line.startswith("error: ")] == [
        "error: hydra.sweep.dir=sweep: another multirun is writing there; give another "
        "hydra.sweep.dir, or wait for it to end"
    ] or "holds a multirun's jobs already" in loser
    winner_seeds = {1, 2} if codes[0] == 0 else {3, 4}
    jobs = SweepDir(tmp_path / "sweep").jobs()
    assert {int(job.settings()["seed"]) for job in jobs} == winner_seeds


def test_a_full_disk_is_one_line_naming_the_file_and_the_old_file_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    from digits.atomic import save_image, write_atomically
    from digits.errors import DigitsError
    from digits.runs.writing import write_json

    target = tmp_path / "metrics.json"
    target.write_text("old")

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    for write in (
        lambda: write_atomically(target, b"new", "the metrics"),
        lambda: write_json(target, {"new": 1}),
        lambda: save_image(__import__("PIL.Image").Image.new("L", (4, 4)), target),
    ):
        with pytest.raises(DigitsError) as raised:
            write()
        assert str(raised.value).startswith(f"{target}: could not write ")
        assert "(No space left on device); the previous one is kept" in str(raised.value)
        assert target.read_text() == "old"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # no partial file


@pytest.mark.slow
def test_commands_on_a_full_disk_say_so_in_one_line_and_leave_no_half_file(
    trained_run: Path, tmp_path: Path, data_root: Path
) -> None:
    """A real full disk: a 16 MB tmpfs (root only) holding a copy of a run and a filler file."""
    full = tmp_path / "full"
    full.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(full)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        run = full / "run"
        shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns(".lock"))
        (full / "filler").write_bytes(b"\0" * (shutil.disk_usage(full).free - 40_000))
        before = file_digests(run)
        image = tmp_path / "digit.png"
        __import__("PIL.Image").Image.new("L", (28, 28), 255).save(image)
        commands = [
            ("digits.export", f"run={run}", f"output={full}/m.onnx"),
            ("digits.predict", f"ckpt_path={RunDir(run).last_checkpoint}", f"images=[{image}]",
             f"save_preprocessed={full}/seen"),
            ("digits.evaluate", f"run={run}"),
        ]  # fmt: skip
        for index, (module, *args) in enumerate(commands):
            if index == 1:  # the rest are refused by their up-front check of the folder
                (full / "filler-2").write_bytes(b"\0" * (shutil.disk_usage(full).free - 1_000))
            result = run_cli(module, *args, cwd=tmp_path, data_root=data_root)
            assert result.returncode == 2, (module, result.stderr[-2000:])
            (line,) = result.stderr.strip().splitlines()
            assert line.startswith("error: ") and "No space left on device" in line, line
            assert not list(full.rglob("*.partial")) and not list(full.rglob(".*.partial"))
        assert file_digests(run) == before
    finally:
        subprocess.run(["umount", str(full)], check=False)
