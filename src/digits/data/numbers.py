"""Number strips as a data option (`data=numbers`, for model=crnn): each strip is 1-8 digits of a
digit set (`source`: MNIST by default, any in-memory option) written side by side the way people
write numbers: random spacing (some overlapping or touching), each digit its own size and up to a
share of its height higher or lower, the whole slanted, a thinner or thicker pen; then laid out by
the sequence reader's contract (digits.reading.strips). Training strips are made from the source's
training digits, validation strips from its validation digits and test strips from its test
digits only, so no test strip holds a digit seen in training.

A strip is a function of (split, seed, its index): a run resumed mid-epoch, or run again, sees the
same strips. Batches are (strips (N, 1, 32, widest), labels (N, max_digits) with -1 after each
number's digits, widths (N,))."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from digits.config.schema import schema_of, store_schemas
from digits.constraints import AT_LEAST_ONE, SEED, Range
from digits.data.building import data_class
from digits.data.datamodule import BatchSize, DigitsDataModule, NumWorkers
from digits.data.idx import tensors_md5
from digits.errors import DigitsError
from digits.reading.strips import batch_of, lay_out
from digits.reading.strokes import dilate, thinned

log = logging.getLogger(__name__)

DIGIT_HEIGHT = 20  # px: MNIST's digits are about 20 px tall in their 28x28 field
MAX_DIGITS = 16  # the longest strip data=numbers makes
Share = Annotated[float, Range(ge=0, le=1, note="a share of a digit's height")]
Strips = Annotated[int, AT_LEAST_ONE]


@dataclass(frozen=True)
class StripStyle:
    """How numbers are written: digits per strip, the gap between neighbours (a share of a digit's
    height; negative: overlapping), how far each digit sits up or down (a share of its height),
    its size, the slant (degrees either way) and the pen (-1 thinner to +1 thicker, px)."""

    min_digits: int
    max_digits: int
    gap: tuple[float, float]
    jitter: float
    scale: tuple[float, float]
    slant: float
    stroke: tuple[int, int]

    @classmethod
    def of(cls, settings: Mapping[str, Any], **changes: Any) -> StripStyle:
        """The style data=numbers's settings (conf/data/numbers.yaml, a checkpoint's) describe,
        with `changes` (e.g. min_digits=5, max_digits=5)."""
        values = {name: settings[name] for name in cls.__dataclass_fields__} | changes
        pairs = ("gap", "scale", "stroke")
        return cls(**{k: tuple(v) if k in pairs else v for k, v in values.items()})


def between(bounds: tuple[float, float], draw: float) -> float:
    """The point `draw` (0-1) of the way from the low bound to the high one."""
    return bounds[0] + (bounds[1] - bounds[0]) * draw


def integer(low: int, high: int, generator: torch.Generator) -> int:
    """A whole number from low to high, both included."""
    return int(torch.randint(low, high + 1, (), generator=generator))


def placed_digit(image: torch.Tensor, scale: float) -> torch.Tensor:
    """A 28x28 uint8 digit as 0-1 ink scaled by `scale`, cropped to its inked columns."""
    size = max(4, round(28 * scale))
    ink = F.interpolate(
        image[None, None].float() / 255, size=(size, size), mode="bilinear", antialias=True
    )[0, 0]
    inked = (ink.amax(dim=0) > 0.1).tolist()
    if True not in inked:
        return ink
    return ink[:, inked.index(True) : len(inked) - inked[::-1].index(True)]


def slanted(canvas: torch.Tensor, degrees: float) -> torch.Tensor:
    """The canvas sheared sideways (its top moved right for a positive angle), widened to fit."""
    shift = math.tan(math.radians(degrees))
    height, width = canvas.shape
    pad = math.ceil(abs(shift) * height / 2) + 1
    wide = width + 2 * pad
    # Each output row y reads the canvas's row y from x - shift * (y - middle), by linear
    # interpolation (grid_sample's coordinates run from -1 to 1 over the pixels' edges).
    ys = torch.arange(height, dtype=torch.float32)[:, None]
    xs = torch.arange(wide, dtype=torch.float32)[None] - pad + shift * (ys - height / 2)
    grid = torch.stack(
        [(2 * xs + 1) / width - 1, ((2 * ys + 1) / height - 1).expand(height, wide)], dim=-1
    )
    return F.grid_sample(canvas[None, None], grid[None], align_corners=False)[0, 0]


def compose(digits: torch.Tensor, style: StripStyle, generator: torch.Generator) -> torch.Tensor:
    """The digits (n, 28, 28, uint8, white on black) written as one number in `style`, laid out
    as a strip (digits.reading.strips)."""
    most = style.scale[1] * 28
    middle = math.ceil(most / 2 + style.jitter * DIGIT_HEIGHT * style.scale[1]) + 1
    # Every draw at once (one call each costs more than the arithmetic): per digit its size, the
    # gap before it and its shift up or down; then the slant and the pen.
    draws = torch.rand(3 * len(digits) + 2, generator=generator).tolist()
    pieces, x, last_start = [], 0, 0
    for index, image in enumerate(digits):
        size, gap, shift = draws[3 * index : 3 * index + 3]
        scale = between(style.scale, size)
        ink = placed_digit(image, scale)
        if index:
            gap = round(between(style.gap, gap) * DIGIT_HEIGHT * scale)
            # Never so far back that the reading order changes: at least half the last digit on.
            x = max(x + gap, last_start + (x - last_start + 1) // 2)
        shift = round(between((-style.jitter, style.jitter), shift) * DIGIT_HEIGHT * scale)
        top = middle - ink.shape[0] // 2 + shift
        pieces.append((ink, top, x))
        last_start, x = x, x + ink.shape[1]
    canvas = torch.zeros(2 * middle, max(left + ink.shape[1] for ink, _, left in pieces))
    for ink, top, left in pieces:
        region = canvas[top : top + ink.shape[0], left : left + ink.shape[1]]
        torch.maximum(region, ink, out=region)
    canvas = slanted(canvas, between((-style.slant, style.slant), draws[-2]))
    strip = lay_out(canvas)
    low, high = style.stroke
    pen = min(high, low + int(draws[-1] * (high - low + 1)))
    if pen:
        strip = (dilate if pen > 0 else thinned)(strip, abs(pen))
    return strip


class StripSet(Dataset):
    """`count` strips made from `images` and `labels` (a split of the source), strip i by a
    generator seeded with (seed, i)."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        count: int,
        style: StripStyle,
        seed: int,
    ) -> None:
        self.images, self.labels = images.cpu(), labels.cpu()
        self.count, self.style, self.seed = count, style, seed

    def __len__(self) -> int:
        return self.count

    def strip(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Strip `index` (STRIP_HEIGHT, width) and its digits."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        length = integer(self.style.min_digits, self.style.max_digits, generator)
        chosen = torch.randint(len(self.labels), (length,), generator=generator)
        # index_select: a tensor index costs ~1 ms here, index_select microseconds.
        digits = self.images.index_select(0, chosen)
        return compose(digits, self.style, generator), self.labels.index_select(0, chosen)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        made = [self.strip(index) for index in indices]
        strips, widths = batch_of([strip for strip, _ in made])
        labels = torch.full((len(made), self.style.max_digits), -1, dtype=torch.int64)
        for row, (_, digits) in enumerate(made):
            labels[row, : len(digits)] = digits
        return strips, labels, widths


class NumbersDataModule(DigitsDataModule):
    """Number strips made from a digit set's splits (see the module's docstring). Its arguments are
    conf/data/numbers.yaml's settings."""

    STRIPS = True

    def __init__(
        self,
        source: Mapping[str, Any],
        min_digits: Annotated[int, Range(ge=1, le=MAX_DIGITS)],
        max_digits: Annotated[int, Range(ge=1, le=MAX_DIGITS)],
        gap: Annotated[list[float], Range(ge=-0.5, le=2, note="a share of a digit's height")],
        jitter: Share,
        scale: Annotated[list[float], Range(gt=0.3, le=2, note="a digit's size, 1 = MNIST's")],
        slant: Annotated[float, Range(ge=0, le=30, note="degrees either way")],
        stroke: Annotated[list[int], Range(ge=-1, le=1, note="-1 thinner, +1 thicker pen")],
        train_strips: Strips,
        val_strips: Strips,
        test_strips: Strips,
        seed: Annotated[int, SEED],
        batch_size: BatchSize,
        num_workers: NumWorkers,
        pin_memory: bool,
    ) -> None:
        super().__init__()
        for key, pair in (("gap", gap), ("scale", scale), ("stroke", stroke)):
            if len(pair) != 2 or pair[0] > pair[1]:
                raise DigitsError(f"data.{key}={list(pair)}: must be [low, high] with low <= high")
        if min_digits > max_digits:
            raise DigitsError(
                f"data.min_digits={min_digits} is more than data.max_digits={max_digits}"
            )
        self.save_hyperparameters()
        self.style = StripStyle.of(self.hparams)
        option = source_option(source)
        self.source = option(**{k: v for k, v in source.items() if not k.startswith("_")})

    @property
    def device(self) -> torch.device:
        """Strips are made on the host (by the loader's workers, with num_workers)."""
        return torch.device("cpu")

    def prepare_data(self) -> None:
        self.source.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.source.setup()
        counts = {"train": self.hparams.train_strips, "val": self.hparams.val_strips,
                  "test": self.hparams.test_strips}  # fmt: skip
        for offset, (split, count) in enumerate(counts.items()):
            digits = getattr(self.source, f"{split}_set")
            strips = StripSet(
                digits.images, digits.labels, count, self.style, self.hparams.seed * 3 + offset
            )
            setattr(self, f"{split}_set", strips)
        log.info(
            "number strips: %s",
            ", ".join(f"{split} {count} (from {len(getattr(self, f'{split}_set').labels)} "
                      "digits)" for split, count in counts.items()),
        )  # fmt: skip

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return batch  # strips are 0-1 floats already

    def training_images(self) -> int:
        return self.hparams.train_strips

    def test_set_id(self) -> dict[str, Any]:
        """The source's test digits and how strips are made of them."""
        self.setup()
        digits = tensors_md5(self.source.test_set.images.cpu(), self.source.test_set.labels.cpu())
        recipe = {"digits": digits, "count": self.hparams.test_strips, "seed": self.hparams.seed}
        return {"md5": digest(recipe | asdict(self.style))}

    @classmethod
    def provenance(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The source's own record, and a digest of it with the strips' settings."""
        source = settings["source"]
        record = source_option(source).provenance(
            {k: v for k, v in source.items() if not k.startswith("_")}
        )
        strips = {k: v for k, v in settings.items() if k != "source"}
        return {"source": record, "md5": digest({"source": record, "strips": strips})}


def source_option(source: Mapping[str, Any]) -> type[DigitsDataModule]:
    """The digit set strips are made from: an in-memory data option of single digits."""
    found = data_class(str(source.get("_target_")), "data.source._target_")
    if issubclass(found, NumbersDataModule) or not found.LABELLED:
        raise DigitsError(
            f"data.source._target_={source.get('_target_')}: strips are made from a set of "
            "labelled single digits (data options mnist, usps, emnist, qmnist, folder)"
        )
    return found


def digest(record: Mapping[str, Any]) -> str:
    text = json.dumps(record, sort_keys=True, default=str).encode()
    return hashlib.md5(text, usedforsecurity=False).hexdigest()


# conf/data/numbers.yaml's schema: the constructor's arguments are its settings.
store_schemas(
    data_numbers=schema_of(NumbersDataModule, target=True, plumbing=("_convert_", "_recursive_"))
)
