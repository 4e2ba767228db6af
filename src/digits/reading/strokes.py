"""Pen strokes as images: measure how wide they are, thicken or thin them. Reading photos brings
users' strokes to MNIST's width with these; training augmentation varies MNIST's with them.

torchvision and Lightning have no morphology; kornia's would be a dependency for two max-pools."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dilate(image: torch.Tensor, radius: int) -> torch.Tensor:
    """Grayscale dilation by an octagon of `radius` (alternating 3x3 square and cross steps, as
    round as a pen's tip gets at this size). Works on (H, W) or batches (N, 1, H, W)."""
    x = image if image.dim() == 4 else image[None, None]
    for step in range(radius):
        if step % 2:
            x = torch.maximum(
                F.max_pool2d(x, (3, 1), 1, (1, 0)), F.max_pool2d(x, (1, 3), 1, (0, 1))
            )
        else:
            x = F.max_pool2d(x, 3, 1, 1)
    return x if image.dim() == 4 else x[0, 0]


def erode(image: torch.Tensor, radius: int) -> torch.Tensor:
    """Grayscale erosion: the dilation of the background."""
    return -dilate(-image, radius)


def thinned(image: torch.Tensor, radius: int, reach: int = 4) -> torch.Tensor:
    """Strokes thinned by `radius` as a thinner pen writes them: as dark as before. Erosion alone
    leaves anti-aliased strokes 2-3 px wide at a fraction of their darkness (a median peak of 0.77,
    a twentieth below 0.48, in 24 px strips of MNIST digits), so faint that a photo's cleanup
    takes them for paper; here each stroke's peak within `reach` px is brought back to what it was
    (at most 4x: the remains of a stroke erosion all but removed stay faint)."""
    eroded = erode(image, radius)
    return (eroded * dilate(image, reach) / dilate(eroded, reach).clamp(min=0.25)).clamp(max=1)


def stroke_width(mask: torch.Tensor) -> float:
    """Mean width of the strokes in a binary image: twice the area over the outline's length (a
    stroke is a long thin band), the outline counted in pixel edges times pi/4 (the mean excess of
    a staircase over the line it follows)."""
    mask = F.pad(mask.float(), (1, 1, 1, 1))
    edges = (mask[:, 1:] != mask[:, :-1]).sum() + (mask[1:] != mask[:-1]).sum()
    return float(2 * mask.sum() / (edges.clamp(min=1) * torch.pi / 4))
