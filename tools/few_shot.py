"""Few-shot adaptation to one writer: a trained model fine-tuned on k examples of each digit from
a writer reads that writer's other digits better, or not. Measured, for docs/transfer-learning.md.

    python tools/few_shot.py init_from=<parent run> [model=cnn] [out=outputs/few_shot]
        [ks=1,3,5,10] [lrs=0.0003,0.001,0.003]      (DIGITS_DATA_DIR holding MNIST/raw/)

A writer is one of the photo benchmark's renderings (tools/photo_benchmark.py: a thin ballpoint, a
marker, small tight scans, stretched postal scans) applied to MNIST test digits, which the parent
never trained on. Each writer gets, per digit, 10 training examples (the first k are used), 50
development digits and 100 test digits, all different digits. For each writer and k:
`experiment=finetune init_from=<parent> data=folder data.val_fraction=null` (all k examples train,
no checkpoint chosen, the last weights tested) for about 100 steps, against the parent as it is
(its best checkpoint tested with train=false: no adaptation), on the same test digits: accuracy, 95% interval, the share of the error left, and
McNemar's exact test.

The learning rate is chosen once, on the development digits of the postal writer at k = 5, from
`lrs`; the test digits are used for the reported figures only. Writes results.json, results.md and
few_shot.png into `out`.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from photo_benchmark import pen, photograph, postal_scan, save, small_scan

from digits.data.idx import load_mnist
from digits.runs import RunDir
from digits.runs.per_image import PerImageResults
from digits.uncertainty import accuracy_interval, paired_test

WRITERS = {
    "ballpoint": lambda digit, rng: photograph(pen(digit, -6), rng, scale=rng.uniform(0.5, 1.2)),
    "marker": lambda digit, rng: photograph(pen(digit, 10), rng, scale=rng.uniform(0.5, 1.2)),
    "small": small_scan,
    "postal": postal_scan,
}
EXAMPLES, DEV, TEST = 10, 50, 100  # per digit, all different MNIST test digits
STEPS = 100  # fine-tuning steps at batch 64, whatever k
SELECTION = ("postal", 5)  # the writer and k the learning rate is chosen on (development digits)


def write_writer(root: Path, name: str, images: np.ndarray, labels: np.ndarray) -> None:
    """The writer's digits as folders: examples/<k>/<digit>/ (nested: the first k), dev/, test/."""
    rng = np.random.default_rng(list(WRITERS).index(name))
    render = WRITERS[name]
    for digit in range(10):
        chosen = np.nonzero(labels == digit)[0][: EXAMPLES + DEV + TEST]
        parts = {"examples": chosen[:EXAMPLES], "dev": chosen[EXAMPLES : EXAMPLES + DEV],
                 "test": chosen[EXAMPLES + DEV :]}  # fmt: skip
        for part, indices in parts.items():
            folder = root / name / part / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            for number, index in enumerate(indices):
                save(render(images[index] / 255.0, rng), folder / f"{number:03d}.png", rng)


def examples(root: Path, name: str, k: int) -> Path:
    """A folder of the writer's first k examples of each digit (links to the files)."""
    folder = root / name / f"k{k}"
    for digit in range(10):
        (folder / str(digit)).mkdir(parents=True, exist_ok=True)
        for number in range(k):
            link = folder / str(digit) / f"{number:03d}.png"
            if not link.exists():
                link.symlink_to(root / name / "examples" / str(digit) / f"{number:03d}.png")
    return folder


def digits_command(*args: str) -> None:
    subprocess.run([sys.executable, "-m", *args], check=True, capture_output=True)


def fine_tune(args: dict, train: Path, test: Path, lr: float, run: Path) -> PerImageResults:
    """The parent fine-tuned on `train`, tested on `test`: its results image by image."""
    k = len(list((train / "0").iterdir()))
    epochs = STEPS // math.ceil(10 * k / 64)
    digits_command("digits.train", "experiment=finetune", f"init_from={args['init_from']}",
                   f"model={args.get('model', 'cnn')}", "data=folder", f"data.root={train}",
                   f"data.test_root={test}", "data.val_fraction=null", "data.skip_bad=true",
                   f"optimizer.lr={lr}", f"trainer.max_epochs={epochs}", "logger=none",
                   f"hydra.run.dir={run}")  # fmt: skip
    return PerImageResults.read(run / "test_predictions.csv")


def unadapted(args: dict, test: Path, run: Path) -> PerImageResults:
    """The parent as it is on `test`: its best checkpoint tested (train=false) on the folder."""
    best = RunDir(Path(args["init_from"])).best_checkpoint()
    digits_command("digits.train", "train=false", f"ckpt_path={best}",
                   f"model={args.get('model', 'cnn')}", "data=folder", f"data.root={test}",
                   f"data.test_root={test}", "data.skip_bad=true", "logger=none",
                   f"hydra.run.dir={run}")  # fmt: skip
    return PerImageResults.read(run / "test_predictions.csv")


def row(writer: str, k: int, base: PerImageResults, tuned: PerImageResults) -> dict:
    images, right = len(tuned.labels), int(tuned.correct.sum())
    interval = accuracy_interval(right, images)
    test = paired_test(base.correct, tuned.correct)
    error_left = (1 - tuned.correct.mean()) / max(1 - base.correct.mean(), 1e-9)
    return {"writer": writer, "k": k, "images": images, "acc": right / images,
            "low": interval["low"], "high": interval["high"], "error_left": error_left,
            "only_unadapted": test["a_only"], "only_tuned": test["b_only"],
            "p_value": test["p_value"]}  # fmt: skip


def main(args: dict[str, str]) -> None:
    out = Path(args.get("out", "outputs/few_shot")).resolve()
    ks = [int(k) for k in args.get("ks", "1,3,5,10").split(",")]
    lrs = [float(lr) for lr in args.get("lrs", "0.0003,0.001,0.003").split(",")]
    images, labels = load_mnist(os.environ.get("DIGITS_DATA_DIR", "data"), train=False)
    images, labels = images.numpy(), labels.numpy()
    for name in WRITERS:
        if not (out / name / "test").is_dir():
            write_writer(out, name, images, labels)
    writer, k = SELECTION
    dev_scores = {
        lr: fine_tune(args, examples(out, writer, k), out / writer / "dev",
                      lr, out / "runs" / f"select-{lr:g}").correct.mean()
        for lr in lrs
    }  # fmt: skip
    lr = max(dev_scores, key=dev_scores.get)
    rows = []
    for name in WRITERS:
        test = out / name / "test"
        base = unadapted(args, test, out / "runs" / f"{name}-unadapted")
        rows.append(row(name, 0, base, base))
        for k in ks:
            tuned = fine_tune(args, examples(out, name, k), test, lr, out / "runs" / f"{name}-k{k}")
            rows.append(row(name, k, base, tuned))
            print(json.dumps(rows[-1]))
    result = {"lr": lr, "dev_accuracy_by_lr": dev_scores, "steps": STEPS, "rows": rows}
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    write_table(out / "results.md", rows, lr, dev_scores)
    plot(out / "few_shot.png", rows)


def write_table(path: Path, rows: list[dict], lr: float, dev: dict) -> None:
    lines = [f"learning rate {lr:g} (development accuracy by lr: "
             + ", ".join(f"{k:g}: {v:.2%}" for k, v in dev.items()) + ")", "",
             "| writer | k | accuracy (95% interval) | error left | only unadapted / only tuned right | p |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        shown = "none" if r["k"] == 0 else str(r["k"])
        lines.append(
            f"| {r['writer']} | {shown} | {r['acc']:.2%} ({r['low']:.2%}-{r['high']:.2%}), "
            f"{r['images']} | {r['error_left']:.2f} | {r['only_unadapted']} / {r['only_tuned']} "
            f"| {r['p_value']:.2g} |"
        )
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(path: Path, rows: list[dict]) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    for name in WRITERS:
        mine = [r for r in rows if r["writer"] == name]
        ks = [r["k"] for r in mine]
        accs = np.array([r["acc"] for r in mine])
        errors = np.array(
            [[r["acc"] - r["low"] for r in mine], [r["high"] - r["acc"] for r in mine]]
        )
        axes.errorbar(ks, accs * 100, yerr=errors * 100, marker="o", capsize=3, label=name)
    axes.set_xlabel("examples of each digit (0: the MNIST model as it is)")
    axes.set_ylabel("accuracy on the writer's other digits (%)")
    axes.set_title("few-shot fine-tuning, 95% intervals")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main(dict(arg.split("=", 1) for arg in sys.argv[1:]))
