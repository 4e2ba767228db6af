"""Training in-process on synthetic MNIST: every model learns, seeds reproduce, checkpoints reload."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from conftest import TEST_SIZE, without_module
from digits.data.idx import load_mnist, split_md5
from digits.errors import DigitsError
from digits.models.checkpoint import load_classifier
from digits.models.classifier import DigitClassifier
from digits.models.outputs import Logits
from digits.runs import RunDir
from digits.runs.per_image import PerImageResults
from digits.training.callbacks import ProgressBar
from digits.training.checks import check_loggers
from digits.training.cuda_check import NVML_CHECK, drop_nvml_check_without_driver
from digits.training.fit import run
from digits.training.tuning import lr_key
from digits.uncertainty import accuracy_interval


def batch_loss(module: DigitClassifier, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    module.eval()
    with torch.no_grad():
        loss = module.criterion(module(batch[0]), batch[1]).item()
    module.train()
    return loss


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("model", ["mlp", "lenet", "cnn"])
def test_each_model_and_optimizer_lowers_the_loss(make_cfg, model: str, optimizer: str) -> None:
    cfg = make_cfg(f"model={model}", f"optimizer={optimizer}", "logger=none", "callbacks=none")
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    batch = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    module = DigitClassifier(cfg.model, cfg.optimizer, None, **cfg.module)
    before = batch_loss(module, batch)
    trainer = instantiate(
        cfg.trainer, max_steps=15, limit_val_batches=0, enable_checkpointing=False, logger=False
    )
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 15
    assert batch_loss(module, batch) < 0.8 * before


def test_the_lstm_row_reader_lowers_the_loss(make_cfg) -> None:
    # The tutorial's settings (experiment=t1_lstm); an LSTM needs more steps than the others.
    cfg = make_cfg("experiment=t1_lstm", "logger=none", "callbacks=none")
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    batch = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    module = DigitClassifier(cfg.model, cfg.optimizer, None, **cfg.module)
    assert isinstance(module.net.lstm, torch.nn.LSTM) and module.net.lstm.input_size == 28
    before = batch_loss(module, batch)
    trainer = instantiate(
        cfg.trainer, max_steps=80, limit_val_batches=0, enable_checkpointing=False, logger=False
    )
    trainer.fit(module, datamodule=datamodule)
    assert batch_loss(module, batch) < 0.8 * before


def test_run_writes_metrics_and_reloadable_checkpoints(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("model=mlp", "trainer.max_epochs=2", "logger=csv")
    metrics = run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved.keys() == metrics.keys()
    assert saved["test/acc"] == pytest.approx(metrics["test/acc"])
    for key in ("train/loss_epoch", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc"):
        assert 0 <= saved[key] <= (1 if "acc" in key else 10), key
    assert saved["epochs"] == 2
    assert saved["test/acc"] > 0.5  # the synthetic classes are easy
    assert saved["wall_time_s"] > 0

    best = Path(saved["best_checkpoint"])
    assert best.parent == run_dir / "checkpoints" and best.is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    # weights_only loading (torch's default) must rebuild the model from the checkpoint alone.
    raw = torch.load(best, map_location="cpu", weights_only=True)
    assert raw["hyper_parameters"]["net"]["_target_"] == "digits.models.MLP"
    reloaded = DigitClassifier.load_from_checkpoint(best, map_location="cpu")
    probe = torch.randn(4, 1, 28, 28)
    reloaded.eval()
    assert reloaded(probe).shape == (4, 10)


def test_a_tested_run_keeps_each_test_image_and_the_accuracy_interval(
    make_cfg, data_root: Path
) -> None:
    cfg = make_cfg("model=mlp", "trainer.max_epochs=1", "logger=none")
    metrics = run(cfg)
    results = PerImageResults.read(RunDir(Path(cfg.paths.output_dir)).test_predictions_file)
    _, labels = load_mnist(data_root, train=False)
    assert np.array_equal(results.labels, labels.numpy())  # the test set, in its order
    assert metrics["test/images"] == TEST_SIZE == len(results.labels)
    assert metrics["test/correct"] == int(results.correct.sum())
    assert metrics["test/acc"] == pytest.approx(results.correct.mean())
    assert ((results.confidence > 0) & (results.confidence <= 1)).all()
    interval = metrics["test/acc_interval"]
    assert interval == accuracy_interval(metrics["test/correct"], TEST_SIZE)
    assert interval["low"] < metrics["test/acc"] < interval["high"]
    assert metrics["test/set"] == {"images": TEST_SIZE, "md5": split_md5(data_root, train=False)}
    # The checkpoint's own predictions agree image by image.
    model = load_classifier(Path(metrics["best_checkpoint"]))
    images, _ = load_mnist(data_root, train=False)
    with torch.no_grad():
        predicted = model.predict_step(images.unsqueeze(1).float() / 255, 0).argmax(dim=1)
    assert np.array_equal(results.predicted, predicted.numpy())


def test_a_damaged_per_image_file_is_named(tmp_path: Path) -> None:
    damaged = tmp_path / "test_predictions.csv"
    damaged.write_text("image,label,predicted,confidence\n0,1,x,0.5\n")
    with pytest.raises(DigitsError, match=r"test_predictions\.csv: damaged"):
        PerImageResults.read(damaged)
    damaged.write_text("image,label\n0,1\n")
    with pytest.raises(DigitsError, match="expected the columns image,label,predicted,confidence"):
        PerImageResults.read(damaged)


def test_early_stopping_ends_a_run_whose_validation_accuracy_stalls(make_cfg) -> None:
    # lr 1e-12: the weights do not move, so val/acc never improves on the first epoch's.
    stalled = ("optimizer.lr=1e-12", "trainer.max_epochs=20", "trainer.limit_train_batches=2")
    cfg = make_cfg("callbacks=early_stopping", "callbacks.early_stopping.patience=2", *stalled)
    metrics = run(cfg)
    assert metrics["epochs"] == 3 and metrics["stopped_early_at_epoch"] == 2
    # Its state is in the checkpoint, and the checkpoint loads with weights_only=True.
    saved = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    (state,) = [v for k, v in saved["callbacks"].items() if k.startswith("EarlyStopping")]
    assert state["wait_count"] == 2
    assert "stopped_early_at_epoch" not in run(make_cfg(*stalled[:2], "trainer.max_epochs=3"))


def test_lr_find_saves_its_plot_and_suggests_an_lr_without_training(
    make_cfg, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = make_cfg("tune=lr_find", "tune.num_training=20", "tune.max_lr=0.1")
    result = run(cfg)
    # The answer is on the console, though the notes (INFO) go to the run's log only.
    assert f"suggested lr: {result['suggested_lr']:.3g}" in capsys.readouterr().out
    run_dir = RunDir(Path(cfg.paths.output_dir))
    assert 1e-6 <= result["suggested_lr"] <= 0.1 and len(result["lr"]) == len(result["loss"]) > 1
    assert json.loads(run_dir.tune_file.read_text())["suggested_lr"] == result["suggested_lr"]
    assert run_dir.lr_find_plot.read_bytes().startswith(b"\x89PNG")
    assert not run_dir.metrics_file.exists() and not run_dir.checkpoints.exists()
    # The lr to set: the optimizer's, or a one-cycle schedule's peak, which replaces it.
    assert (lr_key(cfg), lr_key(make_cfg("scheduler=onecycle"))) == (
        "optimizer.lr",
        "scheduler.max_lr",
    )


def test_the_batch_size_finder_stops_at_its_limit_and_says_the_size(make_cfg) -> None:
    cfg = make_cfg("tune=batch_size", "data.batch_size=16", "tune.max_val=64")
    assert run(cfg) == {"batch_size": 64}  # 16, 32, 64: on the CPU nothing runs out of memory
    saved = json.loads(RunDir(Path(cfg.paths.output_dir)).tune_file.read_text())
    assert saved == {"finder": "scale_batch_size", "batch_size": 64}


def test_logger_many_writes_tensorboard_csv_and_an_mlflow_run_its_client_reads_back(
    make_cfg, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    cfg = make_cfg("logger=many", "trainer.max_epochs=2", f"paths.log_dir={tmp_path / 'outputs'}")
    metrics = run(cfg)
    run_dir = RunDir(Path(cfg.paths.output_dir))
    assert list(run_dir.tensorboard.rglob("events.out.tfevents.*"))
    assert (run_dir.path / "csv" / "metrics.csv").is_file()

    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow/mlflow.db")
    experiment = client.get_experiment_by_name("digits")
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.run_name == cfg.run_name and logged.info.status == "FINISHED"
    assert logged.data.params["optimizer/lr"] == "0.001"
    assert logged.data.params["model/_target_"] == "digits.models.MLP"
    assert logged.data.metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    history = client.get_metric_history(logged.info.run_id, "val/acc")
    assert len(history) == 2 and history[-1].value == pytest.approx(metrics["val/acc"])


def test_a_logger_from_a_missing_extra_is_named_with_its_install_command(
    make_cfg, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_cfg("logger=mlflow")
    without_module(monkeypatch, "mlflow")
    with pytest.raises(
        DigitsError, match=r"logger.mlflow: needs mlflow, .*pip install -e '.\[mlflow\]'"
    ):
        check_loggers(cfg)


def test_same_seed_gives_the_same_metrics(make_cfg) -> None:
    overrides = ("model=lenet", "trainer.max_epochs=1", "trainer.deterministic=true", "seed=7")
    first = run(make_cfg(*overrides, "logger=none"))
    second = run(make_cfg(*overrides, "logger=none"))
    other = run(make_cfg(*overrides[:-1], "seed=8", "logger=none"))
    keys = ("train/loss_epoch", "val/loss", "test/loss")
    assert [first[k] for k in keys] == [second[k] for k in keys]
    assert [first[k] for k in keys] != [other[k] for k in keys]


def test_ema_weights_differ_from_the_raw_ones_and_are_what_is_validated_saved_and_tested(
    make_cfg,
) -> None:
    cfg = make_cfg("model=mlp", "trainer.max_epochs=2", "module.ema_decay=0.9", "logger=none")
    metrics = run(cfg)
    checkpoint = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=True)
    weights = checkpoint["state_dict"]
    raw, average = weights["net.1.weight"], weights["ema.module.1.weight"]
    assert not torch.allclose(raw, average)  # an average of the steps, not the last one
    assert checkpoint["hyper_parameters"]["ema_decay"] == 0.9

    model = load_classifier(metrics["best_checkpoint"])
    images = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        scored = model(images)
        raw_logits = model.net(model.normalize(images))
        ema_logits = model.ema.module(model.normalize(images))
    assert torch.equal(scored, ema_logits) and not torch.allclose(scored, raw_logits)
    # The reported test accuracy is the averaged weights' (digits.evaluate scores the same file).
    datamodule = instantiate(cfg.data)
    datamodule.setup("test")
    test = datamodule.test_set
    with torch.no_grad():
        predicted = model(test.images.unsqueeze(1).float() / 255).argmax(dim=1)
    assert (predicted == test.labels).float().mean().item() == pytest.approx(metrics["test/acc"])
    # Only the raw network is optimised: the average has no gradients.
    assert not any(p.requires_grad for p in model.ema.parameters())


def test_the_gpu_recipe_trains_on_the_cpu_with_device_resident_data_bf16_and_ema(make_cfg) -> None:
    # trainer=gpu's settings that run anywhere: images indexed on the model's device, bf16 mixed
    # precision (CPU autocast here), weight averaging; compile is left to a GPU.
    cfg = make_cfg(
        "model=lenet",
        "trainer.max_epochs=2",
        "data.on_device=true",
        "trainer.precision=bf16-mixed",
        "module.ema_decay=0.9",
        "logger=none",
    )
    metrics = run(cfg)
    assert metrics["epochs"] == 2 and metrics["test/acc"] > 0.5
    assert metrics["train/loss_epoch"] < 2.0


def test_test_logits_of_several_processes_come_back_in_dataset_order() -> None:
    # DistributedSampler deals 5 images to 2 processes as [0, 2, 4] and [1, 3, 0] (padded with
    # the first); the gathered shares, interleaved and cut to 5, are the images in order.
    shares = [torch.tensor([0, 2, 4]), torch.tensor([1, 3, 0])]

    def all_gather(local: torch.Tensor) -> torch.Tensor:  # each process's share of the same kind
        like_local = [torch.nn.functional.one_hot(s, 10).float() if local.dim() == 2 else s
                      for s in shares]  # fmt: skip
        return torch.stack(like_local)

    strategy = SimpleNamespace(root_device=torch.device("cpu"), all_gather=all_gather)
    collected = Logits("test")
    collected.logits = [torch.nn.functional.one_hot(shares[0], 10).float()]
    collected.labels = [shares[0]]
    trainer = SimpleNamespace(world_size=2, strategy=strategy)
    logits, labels = collected.in_dataset_order(trainer, size=5)
    assert labels.tolist() == [0, 1, 2, 3, 4]
    assert logits.argmax(dim=1).tolist() == [0, 1, 2, 3, 4]


def test_the_progress_bar_updates_every_refresh_rate_batches_and_ends_complete() -> None:
    import lightning as L
    from lightning.pytorch.demos.boring_classes import BoringModel

    updated_at: list[int] = []

    class Watched(ProgressBar):
        def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
            updated_at.append(trainer.global_step)
            return super().get_metrics(trainer, pl_module)

    bar = Watched(refresh_rate=5)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=23, limit_val_batches=0, logger=False,
                        callbacks=[bar], enable_checkpointing=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(BoringModel())
    assert set(updated_at) == {5, 10, 15, 20, 23}
    assert bar.progress.tasks[bar.train_progress_bar_id].completed == 23


def test_without_the_nvidia_driver_adam_steps_stop_trying_to_load_nvml(monkeypatch) -> None:
    import ctypes

    import lightning  # noqa: F401  (sets the variable, as in every training run)

    if not torch.backends.cuda.is_built():
        pytest.skip("a CPU-only torch never asks NVML")
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
        pytest.skip("NVML loads on this machine: the variable must stay")
    except OSError:
        pass
    monkeypatch.setenv(NVML_CHECK, "1")
    loads: list[str] = []
    load = ctypes.CDLL
    monkeypatch.setattr(ctypes, "CDLL", lambda name, *args: loads.append(name) or load(name, *args))
    weight = torch.nn.Parameter(torch.zeros(3))
    adam = torch.optim.Adam([weight])

    def five_steps() -> None:
        for _ in range(5):
            weight.grad = torch.ones(3)
            adam.step()

    five_steps()
    assert loads.count("libnvidia-ml.so.1") >= 5  # the waste: a failed load per step
    assert drop_nvml_check_without_driver()
    assert NVML_CHECK not in os.environ
    loads.clear()
    five_steps()
    assert loads == []
    assert not torch.cuda.is_available()


def test_where_nvml_loads_the_nvml_check_stays(monkeypatch) -> None:
    import ctypes

    monkeypatch.setenv(NVML_CHECK, "1")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())
    assert not drop_nvml_check_without_driver()
    assert os.environ[NVML_CHECK] == "1"
