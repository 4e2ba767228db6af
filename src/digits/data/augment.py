"""Augmentation of whole batches on the device the model runs on."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def random_affine(
    images: torch.Tensor, rotation: float, translate: float, scale: Sequence[float]
) -> torch.Tensor:
    """Rotate (up to +-rotation degrees), shift (up to +-translate of the size) and scale (within
    `scale`) each image of a (N, 1, H, W) batch independently, in one grid_sample on its device.
    (torchvision's RandomAffine draws one transform per call, i.e. per batch here.)"""
    count, device = images.shape[0], images.device
    angle = (torch.rand(count, device=device) * 2 - 1) * math.radians(rotation)
    zoom = torch.empty(count, device=device).uniform_(scale[0], scale[1])
    shift = (torch.rand(count, 2, device=device) * 2 - 1) * (2 * translate)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")
