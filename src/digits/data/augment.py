"""Augmentation of whole batches on the device the model runs on: random affine, elastic distortion,
stroke thickness and European 1s, each image drawn independently. (torchvision's RandomAffine and
ElasticTransform draw one transform per call, i.e. per batch here, and it has no morphology.)"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import torch
import torch.nn.functional as F

from digits.constraints import POSITIVE, Range
from digits.reading.strokes import dilate, erode

PEN_RADIUS = 1.0  # the added strokes' half width, px: MNIST's strokes are about 2.5 px wide


def augment(
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    rotation: Annotated[float, Range(ge=0, le=180)] | None = None,
    translate: Annotated[float, Range(ge=0, le=1)] | None = None,
    scale: Annotated[list[float], POSITIVE] | None = None,
    thickness: Annotated[list[float], Range(ge=-3, le=3)] | None = None,
    elastic: Annotated[list[float], POSITIVE] | None = None,
    european_ones: Annotated[float, Range(ge=0, le=1)] | None = None,
) -> torch.Tensor:
    """A randomly transformed copy of a (N, 1, H, W) batch of 0-1 images (`labels`: their
    classes, for `european_ones`). Every setting left out (or None) leaves the images as they
    are; conf/data/mnist.yaml documents them. The annotations are data.augment's schema
    (digits.config.schema.schema_of)."""
    if european_ones is not None and labels is not None:
        images = european_one(images, labels == 1, european_ones)
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
    # Imported here: torchvision takes a second, and the config schema imports this module (for
    # augment's signature) in every command.
    from torchvision.transforms.v2 import functional as TF

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


def european_one(images: torch.Tensor, ones: torch.Tensor, share: float) -> torch.Tensor:
    """A random `share` of the images marked in `ones` (1s) drawn as a 1 is written in much of
    Europe: a long flag down to the left from the top of the stroke (25-45% of its height, 20-50
    degrees below the horizontal) and, on half of them, a base across its foot. MNIST's 1s are
    nearly all bare strokes, so a flagged 1 otherwise reads as a 7 or a 2."""
    chosen = (ones & (torch.rand(len(ones), device=images.device) < share)).nonzero().flatten()
    ink = images[chosen, 0] > 0.5
    chosen, ink = chosen[ink.flatten(1).any(1)], ink[ink.flatten(1).any(1)]
    if not len(chosen):
        return images
    count, height, width = ink.shape
    device = images.device
    rows = torch.arange(height, device=device)
    inked_rows = ink.any(dim=2)
    top = torch.where(inked_rows, rows, height).min(dim=1).values
    foot = torch.where(inked_rows, rows, -1).max(dim=1).values
    columns = torch.arange(width, device=device, dtype=images.dtype)

    def middle(row: torch.Tensor) -> torch.Tensor:  # the ink's mean column in that row
        line = ink[torch.arange(count, device=device), row].to(images.dtype)
        return (line * columns).sum(1) / line.sum(1)

    size = (foot - top + 1).to(images.dtype)
    top_point = torch.stack([middle(top), top.to(images.dtype)], 1)
    length = size * torch.empty(count, device=device).uniform_(0.25, 0.45)
    angle = torch.empty(count, device=device).uniform_(math.radians(20), math.radians(50))
    flag_end = top_point + torch.stack([-torch.cos(angle), torch.sin(angle)], 1) * length[:, None]
    strokes = _segment(top_point, flag_end, height, width)
    half_base = size * torch.empty(count, device=device).uniform_(0.15, 0.3)
    foot_point = torch.stack([middle(foot), foot.to(images.dtype)], 1)
    across = torch.stack([half_base, torch.zeros_like(half_base)], 1)
    base = _segment(foot_point - across, foot_point + across, height, width)
    with_base = torch.rand(count, device=device) < 0.5
    strokes = torch.where(with_base[:, None, None], torch.maximum(strokes, base), strokes)
    images = images.clone()
    images[chosen, 0] = torch.maximum(images[chosen, 0], strokes)
    return images


def _segment(start: torch.Tensor, end: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, H, W) images of a pen line from start to end ((N, 2) points as x, y), PEN_RADIUS
    wide on each side, anti-aliased."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=start.device, dtype=start.dtype),
        torch.arange(width, device=start.device, dtype=start.dtype),
        indexing="ij",
    )
    pixels = torch.stack([xs, ys], -1)[None]  # (1, H, W, 2)
    a, direction = start[:, None, None], (end - start)[:, None, None]
    along = ((pixels - a) * direction).sum(-1) / (direction**2).sum(-1).clamp(min=1e-6)
    nearest = a + along.clamp(0, 1)[..., None] * direction
    distance = (pixels - nearest).norm(dim=-1)
    return (PEN_RADIUS + 0.5 - distance).clamp(0, 1)
