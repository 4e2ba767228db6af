"""`make bench` (its transfer-learning part): fine-tuning a trained model on 7,000 images against
training that model, both timed in this command.

    python tools/bench_finetune.py        (DIGITS_DATA_DIR holding MNIST/raw/ and USPS/usps.bz2)

Trains the parent as the cross-set results did (`model=cnn trainer.max_epochs=2`, MNIST's 55,000
training digits), then `experiment=finetune` from it on USPS's training split with 2% held out for
validation and 2% for the test (about 7,000 digits train), and prints each run's training-loop time
(metrics.json's train_time_s: Lightning's Timer, no start-up or testing) and their ratio (the
target: under 0.1), and the fine-tuned model's held-out USPS accuracy.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from bench_record import record


def train(run: Path, *overrides: str) -> dict:
    """One `digits.train` run into `run`; its metrics.json."""
    command = [sys.executable, "-m", "digits.train", *overrides, "logger=none",
               f"hydra.run.dir={run}"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    return json.loads((run / "metrics.json").read_text())


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parent = Path(tmp) / "parent"
        trained = train(parent, "model=cnn", "trainer.max_epochs=2")
        tuned = train(Path(tmp) / "child", "experiment=finetune", f"init_from={parent}",
                      "model=cnn", "data=usps", "data.val_fraction=0.02",
                      "data.test_fraction=0.02")  # fmt: skip
    result = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "parent_train_time_s": trained["train_time_s"],
        "parent_train_images_per_epoch": round(
            trained["train_time_s"] * trained["train_images_per_s"] / trained["epochs"]
        ),
        "finetune_train_time_s": tuned["train_time_s"],
        "finetune_train_images_per_epoch": round(
            tuned["train_time_s"] * tuned["train_images_per_s"] / tuned["epochs"]
        ),
        "finetune/parent": round(tuned["train_time_s"] / trained["train_time_s"], 3),
        "finetune_test_acc": tuned["test/acc"],
        "finetune_test_images": tuned["test/images"],
    }
    print(json.dumps(result, indent=2))
    record("finetune", result)


if __name__ == "__main__":
    main()
