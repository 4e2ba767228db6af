"""A network of your own for digits: any torch module that takes (N, 1, 28, 28) images (0-1,
normalised by the model) and gives (N, 10) scores. Its constructor's arguments are its settings,
checked by their annotations (digits' own constraints say what each allows)."""

from typing import Annotated

from torch import nn

from digits.constraints import Range


class TinyNet(nn.Module):
    """Two small convolutions and a linear layer."""

    def __init__(self, channels: Annotated[int, Range(ge=1)] = 8) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * channels * 7 * 7, 10),
        )  # fmt: skip

    def forward(self, images):
        return self.layers(images)
