"""What TensorBoard shows to review runs, read back from the event files: names, HPARAMS, the
train-vs-validation layout, the text card and the images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from browser import CHROMIUM  # tools/browser.py
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from conftest import FAST, run_cli
from digits.runs.naming import short_names
from digits.training.review import run_hparams

SWEEP = [*FAST, "model=mlp", "trainer.max_epochs=2", "trainer.limit_train_batches=4"]
DECLARED_METRICS = ["val/acc_best", "test/acc", "test/loss", "train_time_s", "train_images_per_s"]


def events(folder: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0, "images": 0})
    return accumulator.Reload()


def hparams_data(accumulator: EventAccumulator) -> tuple[dict, list[str], str]:
    """The session's hyperparameters, the experiment's metric columns and the trial's name."""
    hparams, metrics, trial = {}, [], ""
    for content in accumulator.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("session_start_info"):
            hparams = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
                       for k, v in data.session_start_info.hparams.items()}  # fmt: skip
            trial = data.session_start_info.group_name
        if data.HasField("experiment"):
            metrics = [info.name.tag for info in data.experiment.metric_infos]
    return hparams, metrics, trial


def text(accumulator: EventAccumulator, tag: str) -> str:
    return accumulator.Tensors(f"{tag}/text_summary")[-1].tensor_proto.string_val[0].decode()


@pytest.fixture(scope="module")
def sweep(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("review")
    lrs = "optimizer.lr=0.01,0.003,0.001"
    args = ["-m", *SWEEP, lrs, "data.batch_size=32", "hydra.sweep.dir=sweep"]
    result = run_cli("digits.train", *args, cwd=cwd, data_root=data_root)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "sweep"


@pytest.mark.slow
def test_a_sweeps_runs_are_named_by_what_they_vary(sweep: Path) -> None:
    names = [next((sweep / job / "tensorboard").iterdir()).name for job in ("0", "1", "2")]
    assert names == ["mlp-adam lr=0.01", "mlp-adam lr=0.003", "mlp-adam lr=0.001"]


def test_hparams_are_the_defining_settings_and_the_final_metrics(sweep: Path) -> None:
    run = events(next((sweep / "1" / "tensorboard").iterdir()))
    hparams, metrics, trial = hparams_data(run)
    assert trial == "1: mlp-adam lr=0.003"  # the job's number and name, not a cut path (issue 46)
    assert 10 <= len(hparams) <= 25
    assert hparams["model"] == "mlp" and hparams["optimizer"] == "adam"
    # Integers as their digits: HPARAMS shows numbers to three places (32.000).
    assert hparams["optimizer.lr"] == 0.003 and hparams["data.batch_size"] == "32"
    assert hparams["trainer.max_epochs"] == "2" and hparams["seed"] == "42"
    plumbing = ("_target_", "callbacks", "paths", "hydra", "logger", "data.root", "run_name")
    assert not [key for key in hparams if any(word in key for word in plumbing)]
    assert metrics == DECLARED_METRICS
    scalars = set(run.Tags()["scalars"])
    assert set(DECLARED_METRICS) <= scalars  # each metric column has its value
    assert "epoch" not in scalars  # Lightning's counter chart is gone
    # The learning rate sorts after the curves, in the train group (not a group of its own).
    assert "train/lr-Adam" in scalars and not [tag for tag in scalars if tag.startswith("lr-")]


def test_the_layout_card_config_and_images_are_there(sweep: Path) -> None:
    run = events(next((sweep / "0" / "tensorboard").iterdir()))
    layout = layout_pb2.Layout.FromString(
        run.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0]
    )
    charts = {chart.title: list(chart.multiline.tag) for chart in layout.category[0].chart}
    assert charts == {
        "accuracy": ["^train/acc$", "^val/acc$"],
        "loss": ["^train/loss_epoch$", "^val/loss$"],
    }
    assert [category.title for category in layout.category] == ["train vs validation", "schedule"]
    card = text(run, "card")
    assert "python -m digits.train -m" in card and "optimizer.lr=0.01,0.003,0.001" in card
    assert "| optimizer.lr | 0.01 |" in card and "| test/acc |" in card
    assert "| test/acc 95% interval (Wilson) | 0." in card
    assert "optimizer:\n  _target_: torch.optim.Adam" in text(run, "config")
    images = run.Tags()["images"]
    assert {"samples/train", "val/confusion_matrix", "val/mistakes"} <= set(images)
    assert len(run.Images("val/mistakes")) == 2  # one grid per validation
    assert run.Images("samples/train")[0].width >= 500  # 4 columns of 150 px: legible


@pytest.mark.slow
def test_tensorboard_shows_every_view_in_a_real_browser(sweep: Path, tmp_path: Path) -> None:
    if not Path(CHROMIUM).is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: .ci/run installs Debian's chromium")
        pytest.skip("no chromium (apt-get install chromium)")
    tool = Path(__file__).parents[1] / "tools" / "tensorboard_screenshots.py"
    result = subprocess.run(
        [sys.executable, str(tool), str(sweep), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(result.stdout)
    assert result.returncode == 0, report
    assert all(all(seen.values()) for seen in report.values())
    shots = sorted(p.name for p in tmp_path.glob("tensorboard-*.png"))
    assert shots == sorted(f"tensorboard-{view}.png" for view in report)
    assert all((tmp_path / shot).stat().st_size > 20_000 for shot in shots)  # drawn, not blank


def test_an_experiment_names_its_runs_and_a_resumed_run_keeps_its_folder(make_cfg) -> None:
    assert make_cfg("experiment=fast").run_name == "fast"
    assert make_cfg("model=cnn", "optimizer=sgd").run_name == "cnn-sgd"
    cfg = make_cfg()
    (Path(cfg.paths.output_dir) / "tensorboard" / "mlp-adam lr=0.5").mkdir(parents=True)
    assert cfg.run_name == "mlp-adam lr=0.5"


def test_short_names_keep_whole_keys_where_last_parts_collide() -> None:
    keys = ["optimizer.lr", "model.hidden", "other.hidden"]
    assert short_names(keys) == {
        "optimizer.lr": "lr",
        "model.hidden": "model.hidden",
        "other.hidden": "other.hidden",
    }


def test_hparams_keep_what_the_command_line_changed_within_the_limit(make_cfg) -> None:
    hparams = run_hparams(make_cfg("model.dropout=0.3", "callbacks.timer=null", "data.root=/x"))
    assert hparams["model.dropout"] == 0.3 and not {"callbacks.timer", "data.root"} & set(hparams)
    assert hparams["scheduler"] == "none" and hparams["experiment"] == "none"
    assert len(run_hparams(make_cfg("hparams.limit=3"))) == 3
