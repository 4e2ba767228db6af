"""Shared fixtures: a tiny synthetic MNIST written as real IDX files, and Hydra config helpers."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from digit_files import write_idx  # tools/digit_files.py
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

# Each command stores the schemas of its config when imported: tests compose their configs directly.
import digits.adapt
import digits.evaluate
import digits.explore
import digits.export
import digits.predict
import digits.serve
import digits.train  # noqa: F401
from digits.config import config_dir

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("DIGITS_DATA_DIR", REPO.parent / "shared" / "data"))
HAS_REAL_DATA = (REAL_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
TRAIN_SIZE, TEST_SIZE, VAL_SIZE = 1200, 200, 200
# Fast settings for every test run: small splits, no sanity check, a few batches.
FAST = [
    f"data.val_size={VAL_SIZE}",
    "data.download=false",
    "trainer.accelerator=cpu",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
]


def synthetic_digits(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: each class is a bright bar at its own place, plus noise. One in 20
    carries a wrong label, as real data does, so that no model is right on all of them (and
    calibration has mistakes to learn from)."""
    labels = rng.integers(0, 10, size=count).astype(np.uint8)
    images = rng.integers(0, 60, size=(count, 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels, strict=True):
        row = 2 + int(label) * 2
        image[row : row + 3, 4:24] = 255
    mislabelled = rng.random(count) < 0.05
    labels[mislabelled] = (labels[mislabelled] + rng.integers(1, 10, mislabelled.sum())) % 10
    return images, labels


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", TRAIN_SIZE), ("t10k", TEST_SIZE)):
        images, labels = synthetic_digits(count, rng)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture
def make_cfg(data_root: Path, tmp_path: Path) -> Iterator:
    """Compose conf/train.yaml with overrides, as Hydra would for a run in tmp_path."""

    def make(*overrides: str) -> DictConfig:
        fast = [f"data.root={data_root}", *FAST]
        if any(o in ("data=numbers", "experiment=numbers") for o in overrides):
            # Number strips are made of the synthetic MNIST: its settings are data.source's.
            fast = [o.replace("data.", "data.source.", 1) if o.startswith("data.") else o
                    for o in fast]  # fmt: skip
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose("train", overrides=[*fast, *overrides], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
            del cfg["hydra"]  # a real run's task config has no hydra node
        return cfg

    yield make
    GlobalHydra.instance().clear()


def run_entry_point(entry: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """`python -m digits.<entry> args...`, in this process; its exit status."""
    monkeypatch.setattr(sys, "argv", [f"digits.{entry}", *args])
    try:
        importlib.import_module(f"digits.{entry}").main()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    finally:
        GlobalHydra.instance().clear()
    return 0


def run_cli(
    module: str, *args: str, cwd: Path, data_root: Path | None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` in cwd with outputs under cwd/outputs."""
    env = {**os.environ, "DIGITS_OUTPUT_DIR": str(cwd / "outputs"), "PYTHONWARNINGS": "ignore"}
    env.pop("HYDRA_FULL_ERROR", None)
    if data_root is not None:
        env["DIGITS_DATA_DIR"] = str(data_root)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_training(cwd: Path, data_root: Path, *args: str) -> subprocess.Popen:
    """`python -m digits.train args...` started in cwd, outputs under cwd/outputs; stdout and
    stderr together in its stdout pipe."""
    env = {
        **os.environ,
        "DIGITS_OUTPUT_DIR": str(cwd / "outputs"),
        "DIGITS_DATA_DIR": str(data_root),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "digits.train", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="session")
def trained_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch mlp run on the synthetic data (its run directory)."""
    cwd = tmp_path_factory.mktemp("trained")
    result = run_cli(
        "digits.train",
        *FAST,
        "model=mlp",
        "trainer.max_epochs=2",
        "hydra.run.dir=outputs/run",
        cwd=cwd,
        data_root=data_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "outputs" / "run"


@pytest.fixture(scope="session")
def real_mnist_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An mlp trained one epoch on real MNIST (its run directory); skipped without real MNIST."""
    if not HAS_REAL_DATA:
        pytest.skip(f"real MNIST not found under {REAL_DATA} (set DIGITS_DATA_DIR)")
    cwd = tmp_path_factory.mktemp("real")
    result = run_cli(
        "digits.train",
        "model=mlp",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        "logger=none",
        "data.download=false",
        "hydra.run.dir=outputs/run",
        cwd=cwd,
        data_root=REAL_DATA,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "outputs" / "run"


def hiding_modules(*prefixes: str) -> str:
    """Python code that, run first in a fresh interpreter, makes every module under `prefixes`
    fail to import (ModuleNotFoundError naming it), as if it were not installed."""
    return f"""
import importlib.abc, sys
class Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == p or name.startswith(p + ".") for p in {prefixes!r}):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Hidden())
"""


def without_module(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    """Make `missing` look not installed to importlib.util.find_spec, in this process."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == missing else find_spec(name)
    )
