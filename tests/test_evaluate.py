"""`digits.evaluate` and `digits.explore` on a trained synthetic run."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import run_cli
from digits.config import config_dir
from digits.evaluation.scoring import (
    calibration,
    committee,
    predict_split,
    score,
)
from digits.models.checkpoint import load_classifier
from digits.models.classifier import shifted_views
from digits.presentation.figures import confident_mistakes
from digits.runs import RunDir
from digits.runs.run_dir import md5
from digits.uncertainty import accuracy_interval

PNG_MAGIC = b"\x89PNG"


def test_score_counts_accuracy_per_class_metrics_and_confused_pairs() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    predicted = torch.tensor([0, 1, 1, 1, 1, 2])
    probabilities = torch.nn.functional.one_hot(predicted, 10).float()
    result = score(probabilities, labels, top_pairs=5)
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["per_class"]["0"]["recall"] == pytest.approx(1 / 3)
    assert result["per_class"]["1"]["precision"] == pytest.approx(2 / 4)
    assert result["per_class"]["1"]["support"] == 2
    assert result["confused_pairs"] == [{"true": 0, "predicted": 1, "count": 2}]
    assert result["confusion_matrix"][0][:3] == [1, 2, 0]
    # Each class's recall over its images, precision over those predicted as it (Wilson).
    assert result["per_class"]["0"]["recall_interval"] == accuracy_interval(1, 3)
    assert result["per_class"]["1"]["precision_interval"] == accuracy_interval(2, 4)
    assert result["per_class"]["5"]["recall_interval"] is None  # no image of a 5


@pytest.mark.parametrize(("correct", "images"), [(4, 6), (9960, 10000), (10000, 10000), (0, 50)])
def test_an_accuracy_comes_with_its_wilson_interval(correct: int, images: int) -> None:
    # Wilson's score interval written out (z for 95%), against what evaluate reports.
    z, n, p = 1.959963984540054, images, correct / images
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    interval = accuracy_interval(correct, images)
    assert interval["low"] == pytest.approx(max(0.0, centre - half), abs=1e-9)
    assert interval["high"] == pytest.approx(min(1.0, centre + half), abs=1e-9)
    assert interval["low"] <= p <= interval["high"] and interval["method"] == "wilson"
    labels = torch.zeros(images, dtype=torch.long)
    predicted = (torch.arange(images) >= correct).long()
    scored = score(torch.nn.functional.one_hot(predicted, 10).float(), labels, top_pairs=0)
    assert scored["accuracy_interval"] == interval


def test_confident_mistakes_come_most_confident_first() -> None:
    probabilities = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    labels = torch.tensor([0, 0, 0, 1])
    order, captions = confident_mistakes(probabilities, labels, count=5)
    assert order.tolist() == [1, 2]
    assert captions[0] == "0→1 80%"


def test_evaluate_a_run_matches_training_and_writes_its_report(
    trained_run: Path, data_root: Path, tmp_path: Path
) -> None:
    result = run_cli("digits.evaluate", f"run={trained_run}", cwd=tmp_path, data_root=data_root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "accuracy" in result.stdout and "macro" in result.stdout

    report = json.loads((trained_run / "evaluation" / "metrics.json").read_text())
    trained = json.loads((trained_run / "metrics.json").read_text())
    assert report["accuracy"] == pytest.approx(trained["test/acc"], abs=1e-6)
    low, high = report["accuracy_interval"]["low"], report["accuracy_interval"]["high"]
    assert low <= report["accuracy"] <= high
    interval = f"(95% interval {low:.4f}-{high:.4f}, Wilson, {report['images']} images)"
    assert interval in " ".join(result.stdout.split())
    assert sum(map(sum, report["confusion_matrix"])) == report["images"] == 200
    assert set(report["per_class"]) == {str(d) for d in range(10)}
    for name in ("confusion_matrix.png", "mistakes.png", "reliability.png"):
        assert (trained_run / "evaluation" / name).read_bytes()[:4] == PNG_MAGIC
    assert sum(b["count"] for b in report["calibration"]["bins"]) == 200
    assert 0 <= report["calibration"]["ece"] <= 1
    # The checkpoint's own temperature, fitted on validation while training, is the one used.
    checkpoint = torch.load(trained["best_checkpoint"], weights_only=True)
    temperature = checkpoint["state_dict"]["temperature"].item()
    assert report["calibration"]["temperature"] == pytest.approx(temperature)
    assert temperature != 1.0 and 0 <= report["calibration"]["ece_uncalibrated"] <= 1
    assert f"at temperature {temperature:.3f}" in result.stdout

    events = EventAccumulator(
        str(RunDir(trained_run).tensorboard_events()), size_guidance={"images": 0}
    )
    events.Reload()
    images = set(events.Tags()["images"])
    assert {"evaluation/test/confusion_matrix", "evaluation/test/mistakes",
            "evaluation/test/reliability"} <= images  # fmt: skip
    # Training logged its own pictures too.
    assert {"samples/train", "val/confusion_matrix"} <= images


def test_evaluate_validation_split_reproduces_best_val_accuracy(
    trained_run: Path, data_root: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "digits.evaluate",
        f"run={trained_run}",
        "split=val",
        "tensorboard=false",
        cwd=tmp_path,
        data_root=data_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((trained_run / "evaluation_val" / "metrics.json").read_text())
    trained = json.loads((trained_run / "metrics.json").read_text())
    assert report["accuracy"] == pytest.approx(trained["val/acc_best"], abs=1e-6)


def test_evaluate_a_multirun_compares_every_job(
    trained_run: Path, data_root: Path, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    for job in ("0", "1"):
        shutil.copytree(trained_run, sweep / job)
    result = run_cli(
        "digits.evaluate", f"run={sweep}", "tensorboard=false", cwd=tmp_path, data_root=data_root
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "evaluation of every job" in result.stdout
    for job in ("0", "1"):
        assert (sweep / job / "evaluation" / "metrics.json").is_file()


def test_evaluate_a_multirun_with_a_failed_job_shows_the_others(
    trained_run: Path, data_root: Path, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    shutil.copytree(trained_run, sweep / "0")
    failed = RunDir(sweep / "1")  # a job that failed before its first checkpoint
    failed.overrides_file.parent.mkdir(parents=True)
    failed.overrides_file.write_text("- data.val_size=1500\n")
    failed.error_file.write_text("data.val_size=1500 is out of range\n")
    result = run_cli(
        "digits.evaluate", f"run={sweep}", "tensorboard=false", cwd=tmp_path, data_root=data_root
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "evaluation of every job" in result.stdout  # a comparison, not one run's report
    good = json.loads((sweep / "0" / "evaluation" / "metrics.json").read_text())
    assert f"{good['accuracy']:.4f}" in result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line == "error: job 1 not evaluated: data.val_size=1500 is out of range"


def test_explore_writes_class_counts_and_figures(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "explore"
    result = run_cli(
        "digits.explore",
        f"out={out}",
        "data.val_size=200",
        "data.pipeline=torchvision",  # explores the same decoded images whatever the pipeline
        cwd=tmp_path,
        data_root=data_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    counts = json.loads((out / "class_counts.json").read_text())
    assert [sum(counts[s]) for s in ("train", "val", "test")] == [1000, 200, 200]
    for name in ("mean_per_class", "pixel_histogram", "samples_per_class"):
        assert (out / f"{name}.png").read_bytes()[:4] == PNG_MAGIC


def test_evaluate_runs_lightnings_test_loop_with_the_configured_trainer(
    trained_run: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainers = []
    test_loop = L.Trainer.test

    def spy(self: L.Trainer, *args, **kwargs):
        trainers.append(self)
        return test_loop(self, *args, **kwargs)

    monkeypatch.setattr(L.Trainer, "test", spy)
    overrides = [f"run={trained_run}", f"data.root={data_root}", "trainer.precision=64-true"]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("evaluate", overrides=overrides)
    run = RunDir(trained_run)
    split = predict_split(cfg, run.best_checkpoint())
    (trainer,) = trainers
    assert trainer.precision == "64-true" and trainer.logger is None  # from conf/trainer/
    assert len(split.images) == len(split.labels) == len(split.probabilities) == 200
    accuracy = (split.probabilities.argmax(dim=1) == split.labels).float().mean().item()
    assert accuracy == pytest.approx(run.metrics()["test/acc"], abs=1e-6)


def test_calibration_error_is_high_for_an_over_confident_model_and_low_for_a_calibrated_one() -> (
    None
):
    labels = torch.arange(1000) % 10
    confident = torch.full((1000, 10), 0.01 / 9)
    predicted = torch.where(torch.arange(1000) % 2 == 0, labels, (labels + 1) % 10)  # half wrong
    confident[torch.arange(1000), predicted] = 0.99
    over = calibration(confident, labels)
    assert over["ece"] == pytest.approx(0.49, abs=1e-3)
    (full,) = [b for b in over["bins"] if b["count"]]
    assert full["count"] == 1000 and full["accuracy"] == pytest.approx(0.5)
    honest = confident.clone()
    honest[torch.arange(1000), predicted] = 0.5  # right half of the time, says so
    honest[torch.arange(1000), (predicted + 5) % 10] = 0.5 - 0.01 * 8 / 9
    assert calibration(honest, labels)["ece"] < 0.01
    # The ECE's bootstrap interval holds its bias-corrected estimate; for a badly calibrated
    # model (the bias small beside the error) the plain ECE too.
    spread = over["ece_interval"]
    assert spread["low"] <= spread["bias_corrected"] <= spread["high"]
    assert spread["low"] <= over["ece"] <= spread["high"] and spread["method"] == "basic bootstrap"
    assert 0 < spread["high"] - spread["low"] < 0.15
    # A well calibrated model: the draws' ECEs sit above its ECE (its upward bias), and the
    # interval still holds the bias-corrected one, not below 0.
    near = calibration(honest, labels)["ece_interval"]
    assert 0 <= near["low"] <= near["bias_corrected"] <= near["high"]
    assert calibration(confident, labels)["ece_interval"] == spread  # seeded: repeatable


def evaluate_config(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("evaluate", overrides=list(overrides))


def test_test_time_augmentation_averages_the_logits_of_the_shifted_images(
    trained_run: Path, data_root: Path
) -> None:
    ckpt = RunDir(trained_run).best_checkpoint()
    plain = predict_split(evaluate_config(f"run={trained_run}", f"data.root={data_root}"), ckpt)
    identity = predict_split(
        evaluate_config(f"run={trained_run}", f"data.root={data_root}", "tta=0"), ckpt
    )
    assert torch.equal(identity.logits, plain.logits)
    shifted = predict_split(
        evaluate_config(f"run={trained_run}", f"data.root={data_root}", "tta=1"), ckpt
    )
    model = load_classifier(ckpt)
    images = plain.images.unsqueeze(1).float() / 255
    with torch.no_grad():
        by_hand = torch.stack([model(view) for view in shifted_views(images, 1)]).mean(dim=0)
    assert torch.allclose(shifted.logits, by_hand, atol=1e-5)
    assert not torch.allclose(shifted.logits, plain.logits)


def test_an_ensemble_of_one_checkpoint_is_that_checkpoint(
    trained_run: Path, data_root: Path
) -> None:
    cfg = evaluate_config(f"run={trained_run}", f"data.root={data_root}", "ensemble=true")
    alone = predict_split(cfg, RunDir(trained_run).best_checkpoint())
    voted, (member,) = committee(cfg, [RunDir(trained_run)])
    assert torch.allclose(voted.probabilities, alone.probabilities, atol=1e-6)
    assert member["accuracy"] == pytest.approx(RunDir(trained_run).metrics()["test/acc"])


def test_evaluate_an_ensemble_of_a_multirun_reports_the_committee_and_each_member(
    trained_run: Path, data_root: Path, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    shutil.copytree(trained_run, sweep / "0")
    shutil.copytree(trained_run, sweep / "1")
    other = RunDir(sweep / "1").best_checkpoint()  # the second member: other weights
    checkpoint = torch.load(other, weights_only=True)
    generator = torch.Generator().manual_seed(0)
    for name, weights in checkpoint["state_dict"].items():
        if name.startswith("net.") and weights.is_floating_point():
            weights += 0.1 * torch.randn(weights.shape, generator=generator)
    torch.save(checkpoint, other)
    manifest = RunDir(sweep / "1").manifest()  # as if the run had made these weights itself
    manifest["checkpoints"][other.name] = md5(other)
    RunDir(sweep / "1").manifest_file.write_text(json.dumps(manifest))
    result = run_cli(
        "digits.evaluate", f"run={sweep}", "ensemble=true", cwd=tmp_path, data_root=data_root
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((sweep / "ensemble_evaluation" / "metrics.json").read_text())
    assert [Path(m["checkpoint"]).parent.parent.name for m in report["members"]] == ["0", "1"]
    assert report["images"] == 200 and 0.5 < report["accuracy"] <= 1
    assert report["members"][0]["accuracy"] != report["members"][1]["accuracy"]
    assert "committee of 2" in result.stdout and f"{report['accuracy']:.4f}" in result.stdout
