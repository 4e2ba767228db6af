"""`data=mix`: several data options trained on at once, each split by its own settings, weighted
per source, validation and the test report per source; only digits' own data options as sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from digit_files import write_usps  # tools/digit_files.py
from hydra import compose, initialize_config_dir

from conftest import TEST_SIZE, TRAIN_SIZE, VAL_SIZE, run_entry_point
from digits.config import config_dir
from digits.data.mix import MixDataModule
from digits.errors import DigitsError
from digits.evaluation.scoring import datamodule_from
from digits.models.checkpoint import read_checkpoint
from digits.runs import RunDir


@pytest.fixture(scope="module")
def usps_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("USPS")
    write_usps(root, per_class=10)
    return root


def mix_args(data_root: Path, usps_root: Path) -> list[str]:
    return [f"data.sources.mnist.root={data_root}", f"data.sources.mnist.val_size={VAL_SIZE}",
            "data.sources.mnist.download=false", f"data.sources.usps.root={usps_root}",
            "data.sources.usps.download=false", "data.sources.usps.test_fraction=0.2"]  # fmt: skip


def test_mnist_and_usps_train_together_and_are_tested_each_on_its_own(
    data_root: Path, usps_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = RunDir(tmp_path / "run")
    args = ["data=mix", *mix_args(data_root, usps_root), "data.weights={usps:2.5}",
            "trainer.max_epochs=1", "logger=none", f"hydra.run.dir={run.path}"]  # fmt: skip
    assert run_entry_point("train", args, monkeypatch) == 0
    metrics = json.loads(run.metrics_file.read_text())
    assert (metrics["test/mnist/images"], metrics["test/usps/images"]) == (TEST_SIZE, 20)
    assert metrics["test/images"] == TEST_SIZE + 20
    assert metrics["test/correct"] == metrics["test/mnist/correct"] + metrics["test/usps/correct"]
    manifest = json.loads(run.manifest_file.read_text())["data"]
    assert set(manifest["sources"]) == {"mnist", "usps"} and len(manifest["md5"]) == 32
    # The checkpoint names its data option and holds plain settings (weights_only); evaluate
    # rebuilds the same mix from it.
    checkpoint = read_checkpoint(run.best_checkpoint())
    assert checkpoint["data_module"] == "MixDataModule"
    rebuilt = datamodule_from(checkpoint)
    assert rebuilt.test_set_id()["md5"] == metrics["test/set"]["md5"]
    # Validation per source too: the pooled val/acc is their image-weighted mean.
    counts = {name: part.stop - part.start for name, part in rebuilt.source_slices("val").items()}
    pooled = sum(metrics[f"val/{name}/acc"] * count for name, count in counts.items())
    assert metrics["val/acc"] == pytest.approx(pooled / sum(counts.values()), abs=1e-6)
    # digits.evaluate on data=mix (an option without a root of its own): the same test images.
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data_root))
    again = [f"run={run.path}", "data=mix", *mix_args(data_root, usps_root), "tensorboard=false"]
    assert run_entry_point("evaluate", again, monkeypatch) == 0
    (report,) = run.path.glob("evaluation_on_mix-*/metrics.json")
    assert json.loads(report.read_text())["images"] == TEST_SIZE + 20


def test_weights_repeat_a_source_s_training_images(data_root: Path, usps_root: Path) -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", ["data=mix", *mix_args(data_root, usps_root),
                                "data.weights={usps:2.5}"])  # fmt: skip
    settings = {key: value for key, value in cfg.data.items() if not key.startswith("_")}
    mix = MixDataModule(**settings)
    usps_train = 100 - 10 - 20  # val_fraction 0.1, test_fraction 0.2
    assert mix.training_images() == TRAIN_SIZE - VAL_SIZE + round(2.5 * usps_train)
    images, labels = mix.splits()["train"]
    assert images.shape[1:] == (28, 28) and len(labels) == mix.training_images()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"weights": {"qmnist": 1.0}}, "data.weights.qmnist: no such source; the sources are mnist"),
        ({"weights": {"mnist": 0}}, "data.weights.mnist=0: must be a number > 0"),
        ({"sources": {}}, "data=mix needs sources"),
        ({"sources": {"evil": {"_target_": "os.system", "command": "touch x"}}},
         "data.sources.evil._target_: refused: 'os.system' is not one of digits' data options"),
    ],
)  # fmt: skip
def test_a_mix_is_refused_in_one_line(change: dict, expected: str, data_root: Path) -> None:
    settings = dict(sources={"mnist": {"_target_": "digits.data.MNISTDataModule"}}, weights=None,
                    batch_size=8, num_workers=0, pin_memory=False, augment=None, on_device="auto")  # fmt: skip
    with pytest.raises(DigitsError, match="^" + expected.replace("(", r"\(").replace(".", r"\.")):
        MixDataModule(**settings | change)


def test_a_source_is_added_or_dropped_from_the_command_line(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        added = compose("train", ["data=mix", "+data@data.sources.mine=folder",
                                  f"data.sources.mine.root={tmp_path}"])  # fmt: skip
        dropped = compose("train", ["data=mix", "~data@data.sources.usps"])
    assert list(added.data.sources) == ["mnist", "usps", "mine"]
    assert added.data.sources.mine.preprocess == "mnist"  # folder.yaml's own defaults
    assert list(dropped.data.sources) == ["mnist"]
