"""`make bench` (its data=folder part): epochs over a folder of photos, the first decoding every
image into the cache, the later ones (and a later run) reading it.

    python tools/bench_folder.py [per_class=500] [epochs=3]

Writes a folder of `per_class` typeset photos of each digit (tools/digit_files.py: PNG and JPEG on
noisy paper, of mixed sizes from 28x28 to 240x240), then times, in this process, with the default model and data settings:
  first epoch      a fresh data module and an empty cache: listing, hashing, decoding every image
                   through the reading preprocessing, the cache written, then one training epoch
  later epochs     the same data module's next epochs (the images already in memory)
  later run        a fresh data module with the cache in place: listing, hashing, the cache read,
                   then one epoch
and prints the ratios (first epoch / the median later epoch; first / later run's). Nothing needs
MNIST or the network.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import lightning as L
from bench_record import record
from digit_files import write_digit_folder
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import digits.train  # noqa: F401  (the schemas conf/train.yaml extends)
from digits.config import config_dir
from digits.models.classifier import DigitClassifier

SIZES = (28, 48, 64, 100, 160, 240)  # pixels square: a folder of mixed sizes, as users' photos are


def timed_epochs(cfg, datamodule, epochs: int) -> list[float]:
    """Seconds of each of `epochs` one-epoch fits of a fresh model on `datamodule`."""
    model = DigitClassifier(net=cfg.model, optimizer=cfg.optimizer, scheduler=None, **cfg.module)
    seconds = []
    for _ in range(epochs):
        trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, num_sanity_val_steps=0)  # fmt: skip
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule)
        seconds.append(time.perf_counter() - start)
    return seconds


def main(args: dict[str, str]) -> None:
    per_class, epochs = int(args.get("per_class", 500)), int(args.get("epochs", 3))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        write_digit_folder(folder, per_class, sizes=SIZES)
        overrides = ["data=folder", f"data.root={folder}", f"data.cache_dir={Path(tmp) / 'cache'}"]
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
        first_run = timed_epochs(cfg, instantiate(cfg.data), epochs)
        later_run = timed_epochs(cfg, instantiate(cfg.data), 1)
    later_epoch = statistics.median(first_run[1:])
    result = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "images": 10 * per_class,
        "sizes_px": list(SIZES),
        "first_epoch_s": round(first_run[0], 2),
        "later_epochs_s": [round(s, 3) for s in first_run[1:]],
        "later_run_first_epoch_s": round(later_run[0], 2),
        "first/later_epoch": round(first_run[0] / later_epoch, 1),
        "first/later_run": round(first_run[0] / later_run[0], 1),
    }
    print(json.dumps(result, indent=2))
    record("folder", result)


if __name__ == "__main__":
    main(dict(arg.split("=", 1) for arg in sys.argv[1:]))
