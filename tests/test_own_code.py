"""Your own code, no fork (docs/examples/my_code): a network and a data module of your own package,
named by `_target_` in options of a --config-dir of your own; their settings checked by their
annotated signatures, held to the input contract in one line, and loaded from a checkpoint only
when you trust your package (DIGITS_TRUSTED_CODE or an entry point)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from digit_files import typeset_digits  # tools/digit_files.py

from conftest import REPO, run_entry_point
from digits.runs import RunDir
from digits.runs.per_image import PerImageResults
from digits.runs.run_dir import PREDICTIONS_FILE

EXAMPLE = REPO / "docs" / "examples" / "my_code"


@pytest.fixture
def my_code(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The example package importable, trusted by nobody; the --config-dir of its options."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.delenv("DIGITS_TRUSTED_CODE", raising=False)
    return ["--config-dir", str(EXAMPLE / "conf")]


@pytest.fixture
def npz_file(tmp_path: Path) -> Path:
    """30 typeset digits of each class in the example data module's format."""
    labels = np.repeat(np.arange(10), 30)
    path = tmp_path / "digits.npz"
    np.savez(path, images=typeset_digits(labels), labels=labels)
    return path


def test_your_own_network_trains_and_loads_only_when_you_trust_it(
    my_code: list[str], data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data_root))
    run = RunDir(tmp_path / "run")
    args = [*my_code, "model=tiny", "data.val_size=200", "trainer.max_epochs=1", "logger=none",
            f"hydra.run.dir={run.path}"]  # fmt: skip
    assert run_entry_point("train", args, monkeypatch) == 0
    assert json.loads(run.metrics_file.read_text())["test/images"] > 0
    capsys.readouterr()
    evaluate = [f"run={run.path}", "tensorboard=false"]
    assert run_entry_point("evaluate", evaluate, monkeypatch) == 2  # not trusted: never built
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "refused: its network is 'my_digits.TinyNet'" in line
    assert "DIGITS_TRUSTED_CODE=<your package>" in line
    monkeypatch.setenv("DIGITS_TRUSTED_CODE", "my_digits")
    assert run_entry_point("evaluate", evaluate, monkeypatch) == 0
    assert (run.evaluation("test") / "metrics.json").is_file()


def test_your_own_data_module_trains_and_loads_only_when_you_trust_it(
    my_code: list[str], npz_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    run = RunDir(tmp_path / "run")
    args = [*my_code, "data=npz", f"data.path={npz_file}", "trainer.max_epochs=1", "logger=none",
            f"hydra.run.dir={run.path}"]  # fmt: skip
    assert run_entry_point("train", args, monkeypatch) == 0
    metrics = json.loads(run.metrics_file.read_text())
    assert metrics["test/images"] == 60  # test_fraction 0.2 of 300, by digits' stratified split
    data = json.loads(run.manifest_file.read_text())["data"]
    assert data["md5"] == hashlib.md5(npz_file.read_bytes()).hexdigest()
    # Scored on your data module chosen on the command line: no trust asked (you chose the code),
    # evaluate's own default data.root (the run's MNIST) not handed to a module without a root.
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path))
    chosen = [*my_code, f"run={run.path}", "data=npz", f"data.path={npz_file}", "tensorboard=false"]
    assert run_entry_point("evaluate", chosen, monkeypatch) == 0
    capsys.readouterr()
    evaluate = [f"run={run.path}", "tensorboard=false"]
    assert run_entry_point("evaluate", evaluate, monkeypatch) == 2  # its data module: not trusted
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "refused: 'my_digits.data.NpzDigits' is not one of digits' data options" in line
    monkeypatch.setenv("DIGITS_TRUSTED_CODE", "my_digits")
    assert run_entry_point("evaluate", evaluate, monkeypatch) == 0
    report = json.loads((run.evaluation("test") / "metrics.json").read_text())
    assert report["images"] == 60  # the same test images, rebuilt from the checkpoint
    assert round(report["accuracy"] * 60) == metrics["test/correct"]
    # Image by image, as the run's own test pass read them.
    evaluated = PerImageResults.read(run.evaluation("test") / PREDICTIONS_FILE)
    tested = PerImageResults.read(run.test_predictions_file)
    assert np.array_equal(evaluated.labels, tested.labels)
    assert np.array_equal(evaluated.predicted, tested.predicted)


@pytest.mark.parametrize(
    ("images", "labels", "expected"),
    [
        ("torch.rand(300, 32, 32)", "torch.arange(300) % 10",
         "read() gives images as torch.float32 (300, 32, 32); the input contract is uint8 (N, 28, 28), "
         "white ink on black"),
        ("torch.zeros(300, 28, 28, dtype=torch.uint8)", "torch.arange(300) % 10 + 3",
         "read() gives a label 10; labels are digits 0-9"),
        ("torch.zeros(300, 28, 28, dtype=torch.uint8)", "torch.arange(299) % 10",
         "read() gives labels as torch.int64 (299,); they are int64 (300,), one per image"),
    ],
)  # fmt: skip
def test_your_own_data_module_must_keep_the_input_contract(
    images: str, labels: str, expected: str, my_code: list[str], npz_file: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    module = f"wrong_read_{tmp_path.name}"  # a module of its own per case: imports are cached
    (tmp_path / f"{module}.py").write_text(
        "import torch\nfrom my_digits import NpzDigits\n\n"
        f"class Wrong(NpzDigits):\n    def read(self):\n        return ({images}, {labels}), None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    args = [*my_code, "data=npz", f"data.path={npz_file}", f"data._target_={module}.Wrong",
            "logger=none"]  # fmt: skip
    assert run_entry_point("train", args, monkeypatch) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"error: data._target_={module}.Wrong: {expected}"
    assert not (tmp_path / "outputs").exists()


def test_your_own_network_must_keep_the_input_contract_and_its_declared_ranges(
    my_code: list[str], data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data_root))
    monkeypatch.chdir(tmp_path)
    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "wide.yaml").write_text("_target_: torch.nn.Flatten\n")  # 784 scores, not 10
    args = ["--config-dir", str(tmp_path / "conf"), "model=wide", "logger=none"]
    assert run_entry_point("train", args, monkeypatch) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "model: the network gives (1, 784), not (1, 10)" in line
    # A setting out of the range its annotation declares: refused before the network is built.
    args = [*my_code, "model=tiny", "model.channels=0", "logger=none"]
    assert run_entry_point("train", args, monkeypatch) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == "error: model.channels=0: out of range, must be >= 1"
    assert not (tmp_path / "outputs").exists()
