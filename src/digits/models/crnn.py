"""The sequence reader's network: a strip of digits (N, 1, 32, W), normalised, to scores per frame
(N, W // 4, 11) for digits 0-9 and CTC's blank (last). Its constructor declares its settings, as
the digit networks' do (digits.models.networks); the values are in conf/model/crnn.yaml."""

from __future__ import annotations

from typing import Annotated, ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from digits.constraints import AT_LEAST_ONE, PROBABILITY, Range
from digits.models.networks import NUM_CLASSES
from digits.reading.strips import STRIP_HEIGHT

BLANK = NUM_CLASSES  # CTC's "no digit here" class: the last of 11
STRIDE = 4  # pixels of the strip per frame: the first two blocks halve its width
MAX_BLOCKS = 5  # each block halves the height: 32 px allow five


class CRNN(nn.Module):
    """A convolutional encoder over the strip (blocks of conv 3x3, batch norm, ReLU and a max-pool
    that halves the height, and the width in the first two), each column of its output a frame
    for a bidirectional GRU, and a linear layer to 11 scores per frame."""

    # What it reads (digits.models.lightning_module): a strip of several digits, not one digit.
    READS: ClassVar[str] = "numbers"

    def __init__(
        self,
        channels: Annotated[
            list[int], Range(ge=1, min_items=2, note=f"a block each, at most {MAX_BLOCKS}")
        ],
        hidden: Annotated[int, AT_LEAST_ONE],
        layers: Annotated[int, AT_LEAST_ONE],
        dropout: Annotated[float, PROBABILITY],
    ) -> None:
        super().__init__()
        if len(channels) > MAX_BLOCKS:
            raise ValueError(f"at most {MAX_BLOCKS} blocks (channels), each halving the height")
        blocks: list[nn.Module] = []
        in_channels = 1
        for index, out_channels in enumerate(channels):
            blocks += [
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
                nn.MaxPool2d((2, 2) if index < 2 else (2, 1)),
            ]
            in_channels = out_channels
        self.encoder = nn.Sequential(*blocks)
        features = in_channels * (STRIP_HEIGHT >> len(channels))
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(
            features,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout * (layers > 1),
        )
        self.head = nn.Linear(2 * hidden, NUM_CLASSES + 1)

    def parts(self) -> dict[str, nn.Module]:
        return {"features": nn.ModuleList([self.encoder, self.rnn]), "head": self.head}

    @staticmethod
    def frames(widths: torch.Tensor) -> torch.Tensor:
        """How many frames strips of these widths give."""
        return torch.div(widths, STRIDE, rounding_mode="floor")

    def forward(self, strips: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (N, W // 4, 11) for strips (N, 1, 32, W); with `widths`, each strip is read
        as if it were alone: past its width, every block's output is zeroed (as a lone strip's
        convolutions see zero padding there) and the GRU stops at its last frame."""
        features = strips
        for layer in self.encoder:
            features = layer(features)
            if widths is not None and isinstance(layer, nn.MaxPool2d):
                widths = torch.div(widths, layer.stride[1], rounding_mode="floor")
                inside = torch.arange(features.shape[-1], device=features.device) < widths[:, None]
                features = features * inside[:, None, None, :]
        # features: (N, C, H', W // 4)
        columns = self.dropout(features.flatten(1, 2).transpose(1, 2))  # (N, frames, C * H')
        if widths is None:
            sequence, _ = self.rnn(columns)
        else:
            frames = widths.clamp(min=1, max=columns.shape[1]).cpu()  # the frames, now
            packed = pack_padded_sequence(columns, frames, batch_first=True, enforce_sorted=False)
            sequence, _ = pad_packed_sequence(
                self.rnn(packed)[0], batch_first=True, total_length=columns.shape[1]
            )
        return self.head(self.dropout(sequence))
