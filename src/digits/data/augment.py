"""Augmentation of whole batches on the device the model runs on: random affine, elastic distortion
and stroke thickness, each image drawn independently. (torchvision's RandomAffine and
ElasticTransform draw one transform per call, i.e. per batch here, and it has no morphology.)"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from digits.strokes import dilate, erode


def augment(
    images: torch.Tensor,
    rotation: float | None = None,
    translate: float | None = None,
    scale: Sequence[float] | None = None,
    thickness: Sequence[float] | None = None,
    elastic: Sequence[float] | None = None,
) -> torch.Tensor:
    """A randomly transformed copy of a (N, 1, H, W) batch of 0-1 images. Every setting left out
    (or None) leaves the images as they are; conf/data/mnist.yaml documents them."""
    if thickness is not None:
        images = vary_thickness(images, *thickness)
    if rotation is None and translate is None and scale is None and elastic is None:
        return images
    grid = affine_grid(images, rotation or 0.0, translate or 0.0, scale or (1.0, 1.0))
    if elastic is not None:
        grid = grid + elastic_displacement(images, *elastic)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


def affine_grid(
    images: torch.Tensor, rotation: float, translate: float, scale: Sequence[float]
) -> torch.Tensor:
    """Sampling grid that rotates (up to +-rotation degrees), shifts (up to +-translate of the
    size) and scales (within `scale`) each image."""
    count, device = images.shape[0], images.device
    angle = (torch.rand(count, device=device) * 2 - 1) * math.radians(rotation)
    zoom = torch.empty(count, device=device).uniform_(scale[0], scale[1])
    shift = (torch.rand(count, 2, device=device) * 2 - 1) * (2 * translate)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    return F.affine_grid(theta, list(images.shape), align_corners=False)


def elastic_displacement(images: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
    """A smooth random displacement (N, H, W, 2) per image, in grid units: uniform noise blurred by
    a Gaussian of `sigma` px and scaled by `alpha`, as torchvision's ElasticTransform makes its one
    (alpha 50, sigma 5 there by default; a few px of movement needs far less here)."""
    count, _, height, width = images.shape
    noise = torch.rand(count, 2, height, width, device=images.device) * 2 - 1
    kernel = int(8 * sigma + 1) | 1  # odd
    smooth = TF.gaussian_blur(noise, [kernel, kernel], [sigma, sigma])
    return (
        smooth * alpha / torch.tensor([width, height], device=images.device)[:, None, None]
    ).permute(0, 2, 3, 1)


def vary_thickness(images: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Grow (positive radius, px each side) or thin (negative) each image's strokes by its own
    random radius in [low, high]; a fractional radius blends the two whole ones around it."""
    radii = range(math.floor(low), math.ceil(high) + 1)
    levels = torch.stack(
        [dilate(images, r) if r > 0 else erode(images, -r) if r < 0 else images for r in radii]
    )
    position = torch.empty(images.shape[0], device=images.device).uniform_(low, high) - radii[0]
    below = position.floor().long().clamp(max=len(radii) - 1)
    above = (below + 1).clamp(max=len(radii) - 1)
    blend = (position - below).view(-1, 1, 1, 1)
    index = torch.arange(images.shape[0], device=images.device)
    return levels[below, index] * (1 - blend) + levels[above, index] * blend
