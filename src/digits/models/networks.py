"""The networks. Each maps a normalised (N, 1, 28, 28) batch to (N, 10) logits.

Each constructor is the one declaration of its network's settings: their types, and the values each
allows (`Annotated` with a digits.constraints range). The config schema of conf/model/ is derived
from it (digits.models.settings); the values themselves are in conf/model/."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import torch
from hydra.utils import get_class
from torch import nn

from digits.constraints import AT_LEAST_ONE, NOT_NEGATIVE, PROBABILITY, Range

IMAGE_SIZE = 28
NUM_CLASSES = 10

Probability = Annotated[float, PROBABILITY]
Count = Annotated[int, AT_LEAST_ONE]
Channels = Annotated[list[int], Range(ge=1, min_items=1, note="a convolution block each")]


def _head(in_features: int, hidden: int | None, dropout: float) -> list[nn.Module]:
    if hidden is None:
        return [nn.Linear(in_features, NUM_CLASSES)]
    return [
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, NUM_CLASSES),
    ]


class Layered(nn.Sequential):
    """A network of layers in a row whose last ones (from `head_start`) are the classifier head:
    its parts are the feature layers before it and the head (transfer learning freezes or tunes
    them apart: module.freeze, module.body_lr_scale)."""

    head_start: int

    def parts(self) -> dict[str, nn.Module]:
        layers = list(self)  # the same modules: freezing a part freezes them in the network
        return {
            "features": nn.Sequential(*layers[: self.head_start]),
            "head": nn.Sequential(*layers[self.head_start :]),
        }


class MLP(Layered):
    """Fully connected: flatten 784 -> hidden... -> 10 (T0: 128, 84)."""

    def __init__(self, hidden: Annotated[list[int], AT_LEAST_ONE], dropout: Probability) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        width = IMAGE_SIZE * IMAGE_SIZE
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, NUM_CLASSES))
        super().__init__(*layers)
        self.head_start = len(layers) - 1  # the output layer


class LeNet(Layered):
    """Conv blocks, each [conv -> (batch norm) -> ReLU] x convs_per_block then max-pool 2, and a
    linear head. T4: channels [16, 32], kernel 5, padding 2, no hidden layer (1568 -> 10). T3 and T1
    are the same family with other sizes (see conf/experiment/)."""

    def __init__(
        self,
        channels: Channels,
        kernel_size: Count,
        padding: Annotated[int, NOT_NEGATIVE],
        convs_per_block: Count,
        batch_norm: bool,
        conv_dropout: Probability,
        hidden: Count | None,
        dropout: Probability,
    ) -> None:
        layers: list[nn.Module] = []
        in_channels, size = 1, IMAGE_SIZE
        for out_channels in channels:
            for _ in range(convs_per_block):
                layers.append(nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(out_channels))
                layers.append(nn.ReLU())
                in_channels, size = out_channels, size + 2 * padding - kernel_size + 1
            layers.append(nn.MaxPool2d(2))
            size //= 2
        if conv_dropout:
            layers.append(nn.Dropout2d(conv_dropout))
        layers.append(nn.Flatten())
        head_start = len(layers)
        layers += _head(in_channels * size * size, hidden, dropout)
        super().__init__(*layers)
        self.head_start = head_start


class CNN(Layered):
    """Dropout CNN (pytorch/examples): conv k3 -> ReLU per channel width (no padding), max-pool 2,
    dropout, fc hidden, dropout, fc 10 (defaults: 32c3-64c3-pool-drop0.25-fc128-drop0.5-fc10)."""

    def __init__(
        self,
        channels: Channels,
        kernel_size: Count,
        hidden: Count | None,
        conv_dropout: Probability,
        dropout: Probability,
    ) -> None:
        layers: list[nn.Module] = []
        in_channels, size = 1, IMAGE_SIZE
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, kernel_size), nn.ReLU()]
            in_channels, size = out_channels, size - kernel_size + 1
        layers += [nn.MaxPool2d(2), nn.Dropout(conv_dropout), nn.Flatten()]
        size //= 2
        head_start = len(layers)
        layers += _head(in_channels * size * size, hidden, dropout)
        super().__init__(*layers)
        self.head_start = head_start


class LSTMReader(nn.Module):
    """Reads the image row by row, as the LSTM tutorial does: 28 steps of 28 pixels through an
    LSTM (hidden units, layers), its last hidden state into a linear layer to 10 scores."""

    def __init__(self, hidden: Count, layers: Count, dropout: Probability) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            IMAGE_SIZE, hidden, num_layers=layers, batch_first=True, dropout=dropout * (layers > 1)
        )
        self.head = nn.Linear(hidden, NUM_CLASSES)

    def parts(self) -> dict[str, nn.Module]:
        return {"features": self.lstm, "head": self.head}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rows = images.flatten(1, 2)  # (N, 1, 28, 28) -> (N, 28 rows, 28 pixels)
        _, (last_hidden, _) = self.lstm(rows)
        return self.head(last_hidden[-1])


DIGIT_NETWORKS = (MLP, LeNet, CNN, LSTMReader)  # conf/model/'s digit classifiers


def reads_numbers(net: Mapping[str, Any]) -> bool:
    """Whether the network a config (or a checkpoint's settings) names reads strips of digits:
    its class says so (`READS = "numbers"`, as digits.models.CRNN does)."""
    return getattr(get_class(str(net["_target_"])), "READS", "digits") == "numbers"


def parts_of(network: nn.Module) -> dict[str, nn.Module]:
    """A network's named parts: its own `parts()` (digits' networks: features and head), else its
    top-level submodules by name (a network of your own)."""
    parts = getattr(network, "parts", None)
    return parts() if callable(parts) else dict(network.named_children())
