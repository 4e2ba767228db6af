"""`make bench`: how fast digits trains and predicts, against what the hardware allows.

    python tools/bench.py [steps=N] [workloads=mlp,fast,cnn|none] [repeats=3] [tta=true] [tta_rounds=3]

Workloads: mlp at batch 64 (the t0 tutorial's), `experiment=fast` (its LeNet, one-cycle Adam, batch
128) and cnn at batch 64. One process per measurement, all with the workload's model, optimizer,
schedule, batch size and number of steps (default: one epoch, ceil(55,000 / batch size) steps):
  raw        a hand-written loop over the training set preloaded as one normalised tensor
  lightning  the same model, optimizer, schedule and tensors in a bare LightningModule and Trainer
             (no logger, metrics, callbacks, checkpoints or progress bar), timed by Lightning's Timer
  digits     `python -m digits.train` with its defaults (TensorBoard logging, metrics, checkpoints,
             progress bar, ...), timed by the same Timer over the training loop
  tutorial   a hand-written loop over torchvision's MNIST DataLoader (PIL -> ToTensor -> Normalize)
plus the time for `experiment=fast` and for `model=cnn` to reach 99.0% test accuracy from scratch,
side by side with experiment=fast's raw twin (the same recipe as a hand-written loop), and predict
latency. Each throughput is the median of `repeats` runs, the kinds
taking turns.
Prints a table and writes outputs/bench/<date>.json. Needs real MNIST (DIGITS_DATA_DIR).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import torch
from bench_record import record
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import MNIST

import digits.train  # noqa: F401  (the schemas conf/train.yaml extends)
from digits.config import config_dir

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = os.environ.get("DIGITS_DATA_DIR", "data")


# Each workload's options, as `digits.train` takes them; the raw and bare-Lightning twins are built
# from the same composed config.
WORKLOADS = {
    "mlp": ["model=mlp", "data.batch_size=64"],
    "fast": ["experiment=fast"],
    "cnn": ["model=cnn", "data.batch_size=64"],
}


KINDS = ("raw", "lightning", "digits", "tutorial")


def config(*overrides: str):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def optimizer_and_schedule(cfg, model: nn.Module, steps: int) -> tuple:
    """The workload's optimizer, and its per-step schedule (or None), as digits builds them."""
    optimizer = instantiate(cfg.optimizer)(params=model.parameters())
    if not cfg.get("scheduler"):  # scheduler=none: an empty group
        return optimizer, None
    schedule = {k: v for k, v in cfg.scheduler.items() if k != "interval"}
    schedule["total_steps"] = steps
    return optimizer, instantiate(schedule)(optimizer)


def normalised_mnist(cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images as one normalised float tensor (N, 1, 28, 28), and the labels."""
    dataset = MNIST(DATA_ROOT, train=True)
    images = dataset.data.unsqueeze(1).float().div(255).sub(cfg.module.mean).div(cfg.module.std)
    return images, dataset.targets


def bare_lightning(workload: str, steps: int) -> float:
    """Images/s of the workload in a bare LightningModule and Trainer over the raw loop's tensors."""
    import lightning as L
    from lightning.pytorch.callbacks import Timer

    from digits.data.batches import TensorImages, keep_batch

    cfg = config(*WORKLOADS[workload])
    L.seed_everything(cfg.seed, verbose=False)
    images, labels = normalised_mnist(cfg)

    class Bare(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = instantiate(cfg.model)

        def training_step(self, batch, batch_idx: int) -> torch.Tensor:
            return nn.functional.cross_entropy(self.net(batch[0]), batch[1])

        def configure_optimizers(self):
            optimizer, schedule = optimizer_and_schedule(cfg, self.net, steps)
            if schedule is None:
                return optimizer
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": schedule, "interval": "step"},
            }

    loader = DataLoader(TensorImages(images, labels), batch_size=cfg.data.batch_size, shuffle=True,
                        collate_fn=keep_batch)  # fmt: skip
    timer = Timer()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=steps, logger=False,
                        callbacks=[timer], enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0)  # fmt: skip
    trainer.fit(Bare(), loader)
    return steps * cfg.data.batch_size / timer.time_elapsed("train")


def hand_loop(workload: str, steps: int, pipeline: str) -> float:
    """Images/s of a plain PyTorch training loop; pipeline 'raw' or 'tutorial'."""
    cfg = config(*WORKLOADS[workload])
    torch.manual_seed(cfg.seed)
    model = instantiate(cfg.model)
    optimizer, schedule = optimizer_and_schedule(cfg, model, steps)
    loss_fn = nn.CrossEntropyLoss()
    mean, std, batch_size = cfg.module.mean, cfg.module.std, cfg.data.batch_size
    if pipeline == "raw":
        images, labels = normalised_mnist(cfg)

        def batches():
            order = torch.randperm(len(labels))
            for start in range(0, len(order), batch_size):
                index = order[start : start + batch_size]
                yield images[index], labels[index]
    else:
        transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((mean,), (std,))]
        )
        loader = DataLoader(
            MNIST(DATA_ROOT, train=True, transform=transform), batch_size=batch_size, shuffle=True
        )

        def batches():
            yield from loader

    model.train()
    start = time.perf_counter()
    done = 0
    while done < steps:
        for x, y in batches():
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            done += 1
            if done == steps:
                break
    return steps * batch_size / (time.perf_counter() - start)


def raw_time_to_accuracy(workload: str, target: float = 0.99) -> dict:
    """The raw twin of a recipe, timed to `target` test accuracy as TimeToAccuracy times digits:
    the same network, optimizer, schedule, epochs and 55,000 training images (digits' split), a
    hand-written loop; training time per epoch, test scoring excluded (no validation: the raw loop
    has none)."""
    from digits.data.split import split_indices

    cfg = config(*WORKLOADS[workload])
    torch.manual_seed(cfg.seed)
    images, labels = normalised_mnist(cfg)
    train, _ = split_indices(len(labels), cfg.data.val_size, cfg.data.split_seed, None, None, "")
    images, labels = images[train], labels[train]
    test = MNIST(DATA_ROOT, train=False)
    test_images = test.data.unsqueeze(1).float().div(255).sub(cfg.module.mean).div(cfg.module.std)
    batch_size, epochs = cfg.data.batch_size, cfg.trainer.max_epochs
    model = instantiate(cfg.model)
    optimizer, schedule = optimizer_and_schedule(cfg, model, -(-len(labels) // batch_size) * epochs)
    history, train_time = [], 0.0
    for epoch in range(epochs):
        model.train()
        start = time.perf_counter()
        for index in torch.randperm(len(labels)).split(batch_size):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images[index]), labels[index]).backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
        train_time += time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            predicted = torch.cat([model(batch).argmax(1) for batch in test_images.split(1000)])
        history.append({"epoch": epoch + 1, "train_time_s": train_time,
                        "test_acc": float((predicted == test.targets).float().mean())})  # fmt: skip
        if history[-1]["test_acc"] >= target:
            return {"target": target, "reached": True, "history": history,
                    "time_to_target_s": train_time}  # fmt: skip
    return {"target": target, "reached": False, "history": history}


def run_quietly(command: list[str], **kwargs: Any) -> None:
    """Run a measured command with its output captured; if it fails, stop with its last lines."""
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, **kwargs)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")


def digits_train(workload: str, steps: int, run_dir: Path) -> float:
    """Images/s of the real `python -m digits.train` path, from its metrics.json."""
    command = [
        sys.executable,
        "-m",
        "digits.train",
        *WORKLOADS[workload],
        "trainer.accelerator=cpu",
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={steps}",
        "trainer.limit_val_batches=0",
        "~callbacks.model_checkpoint",  # no validation to choose a best checkpoint by
        "trainer.num_sanity_val_steps=0",
        "test=false",
        f"hydra.run.dir={run_dir}",
    ]
    run_quietly(command)
    return json.loads((run_dir / "metrics.json").read_text())["train_images_per_s"]


# The runs timed to 99.0% test accuracy, as users run them (validation included): our record
# recipe with its own schedule, and the tutorial-style cnn for up to 10 epochs.
TIME_TO_99 = {
    "experiment=fast": ["experiment=fast"],
    "model=cnn": ["model=cnn", "optimizer=adam", "trainer.max_epochs=10"],
}


def time_to_accuracy(run_dir: Path, recipe: list[str], target: float = 0.99) -> dict:
    """Training seconds until the test accuracy after an epoch reaches `target`, by
    tools/time_to_accuracy.py: the run as users run it (TensorBoard, figures, validation and
    checkpoints included), the probe's test scoring not."""
    command = [
        sys.executable,
        "-m",
        "digits.train",
        *recipe,
        "trainer.accelerator=cpu",
        "test=false",
        f"hydra.run.dir={run_dir}",
        "+callbacks.time_to_accuracy._target_=time_to_accuracy.TimeToAccuracy",
        f"+callbacks.time_to_accuracy.target={target}",
    ]
    tools = {"PYTHONPATH": os.pathsep.join([str(REPO / "tools"), os.environ.get("PYTHONPATH", "")])}
    run_quietly(command, env=os.environ | tools)
    return json.loads((run_dir / "time_to_accuracy.json").read_text())


def fast_against_raw_twin(tmp: Path, rounds: int) -> dict[str, dict]:
    """experiment=fast and its raw twin timed to 99%, taking turns for `rounds` rounds; the
    digits/raw ratio of each round (both reached 99%) and their median."""
    runs: dict[str, dict] = {}
    ratios = []
    for round_ in range(rounds):
        digits = time_to_accuracy(tmp / f"tta-fast-{round_}", TIME_TO_99["experiment=fast"])
        twin = subprocess.run([sys.executable, __file__, "_measure", "tta-raw", "fast", "0"],
                              check=True, capture_output=True, text=True, cwd=REPO)  # fmt: skip
        raw = json.loads(twin.stdout)
        runs[f"experiment=fast, round {round_ + 1}"] = digits
        runs[f"experiment=fast, raw twin, round {round_ + 1}"] = raw
        if digits["reached"] and raw["reached"]:
            ratios.append(round(digits["time_to_target_s"] / raw["time_to_target_s"], 3))
    runs["experiment=fast / raw twin"] = {
        "ratios": ratios,
        "median": statistics.median(ratios) if ratios else None,
    }
    return runs


def predict_speed(ckpt: Path, folder: Path) -> dict:
    """Single-image latency with the model loaded, and end-to-end folder throughput."""
    sys.path.insert(0, str(REPO / "tools"))
    from photo_benchmark import make_photos

    from digits.inference.predictor import Predictor
    from digits.reading.images import image_files

    make_photos(folder, 200, DATA_ROOT)
    files = image_files([str(folder)])
    start = time.perf_counter()
    predictor = Predictor(ckpt)
    load_seconds = time.perf_counter() - start
    latencies = []
    for file in files[:30]:
        start = time.perf_counter()
        predictor([file], "mnist", top_k=3)
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    predictor(files, "mnist", top_k=3)
    seconds = time.perf_counter() - start
    return {
        "model_load_ms": round(load_seconds * 1000, 1),
        "single_image_latency_ms": round(statistics.median(latencies) * 1000, 2),
        "folder_images": len(files),
        "folder_images_per_s": round(len(files) / seconds, 1),
    }


def measure(kind: str, *args: str) -> float:
    """Run one measurement in a fresh process; returns images/s."""
    out = subprocess.run(
        [sys.executable, __file__, "_measure", kind, *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout
    return float(out.strip().splitlines()[-1])


def main(args: dict[str, str]) -> None:
    epoch_steps = "steps" not in args  # default: one epoch of the 55,000 training images
    workloads = [w for w in args.get("workloads", ",".join(WORKLOADS)).split(",") if w != "none"]
    repeats = int(args.get("repeats", 3))
    console = Console(width=150)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workload in workloads:
            batch_size = config(*WORKLOADS[workload]).data.batch_size
            steps = -(-55_000 // batch_size) if epoch_steps else int(args["steps"])
            row = {"workload": workload, "batch_size": batch_size, "steps": steps}
            runs: dict[str, list[float]] = {kind: [] for kind in KINDS}
            for repeat in range(repeats):  # interleaved: a slow spell of the machine hits all kinds
                for kind in KINDS:
                    if kind == "digits":
                        run_dir = Path(tmp) / f"{workload}-{repeat}"
                        runs[kind].append(digits_train(workload, steps, run_dir))
                    else:
                        runs[kind].append(measure(kind, workload, str(steps)))
            row |= {kind: statistics.median(values) for kind, values in runs.items()}
            row["runs"] = runs
            for kind in ("raw", "lightning", "digits", "tutorial"):  # per-step cost
                row[f"{kind}_ms_per_step"] = round(1000 * batch_size / row[kind], 3)
            for top, bottom in (("digits", "raw"), ("digits", "lightning"), ("lightning", "raw"),
                                ("digits", "tutorial")):  # fmt: skip
                row[f"{top}/{bottom}"] = round(row[top] / row[bottom], 3)
            rows.append(row)
            console.print(row)
        result = {
            "date": datetime.now().isoformat(timespec="seconds"),
            "cpu_threads": torch.get_num_threads(),
            "throughput": rows,
        }
        if args.get("tta", "true") == "true":
            result["time_to_99"] = fast_against_raw_twin(Path(tmp), int(args.get("tta_rounds", 3)))
            result["time_to_99"]["model=cnn"] = time_to_accuracy(
                Path(tmp) / "tta-cnn", TIME_TO_99["model=cnn"]
            )
            result["predict"] = predict_speed(
                Path(tmp) / "tta-cnn" / "checkpoints" / "last.ckpt", Path(tmp) / "photos"
            )

    if rows:
        steps = "one epoch of" if epoch_steps else str(rows[0]["steps"])
        console.print(throughput_table(rows, steps))
    if "time_to_99" in result:
        console.print(time_to_99_table(result["time_to_99"]))
        console.print(f"predict: {result['predict']}")
    console.print(f"written to {record('', result)}")


def throughput_table(rows: list[dict], steps: str) -> Table:
    table = Table(
        title=f"training images/s and ms per step ({steps} steps, CPU)", header_style="bold"
    )
    columns = ("workload", "batch", "raw", "lightning", "digits", "tutorial", "ms/step raw",
               "lightning", "digits", "digits/raw", "digits/lightning", "lightning/raw")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r["workload"],
            str(r["batch_size"]),
            *(f"{r[kind]:.0f}" for kind in ("raw", "lightning", "digits", "tutorial")),
            *(f"{r[f'{kind}_ms_per_step']:.2f}" for kind in ("raw", "lightning", "digits")),
            *(f"{r[ratio]:.2f}" for ratio in ("digits/raw", "digits/lightning", "lightning/raw")),
        )
    return table


def time_to_99_table(runs: dict[str, dict]) -> Table:
    table = Table(title="time to 99.0% test accuracy (CPU)", header_style="bold")
    for column in ("run", "training time", "epochs", "test accuracy by epoch"):
        table.add_column(column, justify="right")
    for name, run in runs.items():
        if "ratios" in run:
            ratios = ", ".join(f"{ratio:.2f}" for ratio in run["ratios"])
            table.add_row(name, f"median {run['median']}", "", f"rounds: {ratios}")
            continue
        history = run["history"]
        reached = f"{run['time_to_target_s']:.1f} s" if run["reached"] else "not reached"
        accuracies = " ".join(f"{epoch['test_acc']:.2%}" for epoch in history)
        table.add_row(name, reached, str(len(history)), accuracies)
    return table


if __name__ == "__main__":
    if sys.argv[1:2] == ["_measure"]:
        kind, workload, steps = sys.argv[2:5]
        if kind == "tta-raw":
            print(json.dumps(raw_time_to_accuracy(workload)))
        elif kind == "whole-raw":  # every epoch of the recipe (no target stops it), then the test
            print(json.dumps(raw_time_to_accuracy(workload, target=2.0)))
        else:
            measured = bare_lightning if kind == "lightning" else partial(hand_loop, pipeline=kind)
            print(measured(workload, int(steps)))
    else:
        main(dict(arg.split("=", 1) for arg in sys.argv[1:]))
