"""`make bench` (its number-reading part): how fast the sequence reader reads 5-digit numbers, in
batches, against the segmenting reader on the same numbers, both timed in this command.

    python tools/bench_numbers.py [strips=1024] [segmented=128]

Speed does not depend on what a model has learned, so both readers are built from conf/ untrained
(conf/model/crnn.yaml's network; conf/model/cnn.yaml's for the segmenting reader's classifier) and
nothing needs a dataset: 5-digit strips are composed of drawn digits (data=numbers's own code), laid
out (digits.reading.strips) and read by the number reader through Lightning's predict loop in
batches of 256 (the target: at least 200 numbers/s on this CPU). The same strips, saved as images,
are read whole by `digits.predict mode=number reader=sequence`'s code (finding the rows first) and
by the segmenting reader (`mode=number`), `segmented` of them each, per image.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch
from bench_record import record
from hydra import compose, initialize_config_dir
from PIL import Image

import digits.train  # noqa: F401  (stores the schemas conf/train.yaml extends)
from digits.config import config_dir
from digits.data.numbers import StripSet, StripStyle
from digits.inference.predictor import CheckpointModel, Predictor, StripModel
from digits.models.classifier import DigitClassifier
from digits.models.number_reader import NumberReader


def module(model: str) -> torch.nn.Module:
    """The LightningModule conf/ builds for `model`, untrained, in inference mode."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", [f"model={model}"])
    built = NumberReader if model == "crnn" else DigitClassifier
    return built(cfg.model, cfg.optimizer, None, **cfg.module).eval()


def five_digit_strips(count: int) -> list[torch.Tensor]:
    """`count` strips of 5 drawn digits (a bar each, at its own place), written as
    conf/data/numbers.yaml says, laid out."""
    digits = torch.zeros(10, 28, 28, dtype=torch.uint8)
    for digit in range(10):
        digits[digit, 4:24, 8 + digit : 12 + digit] = 255
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        data = compose("train", ["data=numbers"]).data
    style = StripStyle.of(data, min_digits=5, max_digits=5)
    strips = StripSet(digits, torch.arange(10), count, style, seed=0)
    return [strips.strip(index)[0] for index in range(count)]


def timed(work, repeats: int = 3) -> float:
    """The fastest of `repeats` runs of `work()`, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main(args: dict[str, str]) -> None:
    strips = five_digit_strips(int(args.get("strips", 1024)))
    reader = StripModel(module("crnn"))  # untrained: no checkpoint to load
    batched = len(strips) / timed(lambda: reader.read(strips, batch_size=256))
    classifier = CheckpointModel(module("cnn"), reader.trainer)
    count = int(args.get("segmented", 128))
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for index, strip in enumerate(strips[:count]):
            files.append(Path(tmp) / f"strip{index}.png")
            Image.fromarray(255 - (strip * 200).round().byte().numpy()).save(files[-1])
        sequence = Predictor(reader, reader="sequence")
        segmenting = Predictor(classifier)
        per_image = {
            name: count / timed(lambda p=predictor: p(files, "mnist", 1, mode="number"), 1)
            for name, predictor in (("sequence", sequence), ("segmenting", segmenting))
        }
    result = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "sequence_batched_numbers_per_s": round(batched, 1),
        "sequence_images_per_s": round(per_image["sequence"], 1),
        "segmenting_images_per_s": round(per_image["segmenting"], 1),
        "sequence/segmenting": round(per_image["sequence"] / per_image["segmenting"], 2),
    }
    print(json.dumps(result, indent=2))
    record("numbers", result)


if __name__ == "__main__":
    main(dict(arg.split("=", 1) for arg in sys.argv[1:]))
