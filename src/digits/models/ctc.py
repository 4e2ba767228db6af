"""Reading digits out of per-frame scores trained with CTC: greedy (the likeliest class per frame,
repeats merged, blanks dropped) or by prefix beam search (the likeliest digit string summed over
its alignments). Each digit comes with its confidence, the posterior of its class at the frame
that emitted it, and that frame (where in the strip it was read). torchaudio's CTC decoders would
add torchaudio (and, for the beam, flashlight's text package) for a loop this short."""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

import torch

from digits.models.crnn import BLANK

# The widest beam: each frame's work grows with it (readings kept times the 10 digits), so a
# setting, or an exported file's metadata, cannot make one strip cost minutes.
MAX_BEAM = 64


class Reading(NamedTuple):
    """A strip's digits, each one's confidence and the frame it was read at."""

    digits: list[int]
    confidences: list[float]
    frames: list[int]

    @property
    def text(self) -> str:
        return text(self.digits)

    @property
    def confidence(self) -> float:
        """The whole reading's: its least sure digit's (0 for an empty reading)."""
        return min(self.confidences, default=0.0)


def greedy(probabilities: torch.Tensor, frames: torch.Tensor) -> list[Reading]:
    """Each strip's reading from its (T, 11) frame posteriors (N, T, 11), `frames` of them valid;
    a digit's confidence is the highest posterior over the frames of its run."""
    best, classes = probabilities.max(dim=2)
    readings = []
    for row, length in enumerate(frames.tolist()):
        reading = Reading([], [], [])
        previous = BLANK
        for frame, (label, confidence) in enumerate(
            zip(classes[row, :length].tolist(), best[row, :length].tolist(), strict=True)
        ):
            if label != BLANK and label == previous:
                if confidence > reading.confidences[-1]:
                    reading.confidences[-1], reading.frames[-1] = confidence, frame
            elif label != BLANK:
                reading.digits.append(label)
                reading.confidences.append(confidence)
                reading.frames.append(frame)
            previous = label
        readings.append(reading)
    return readings


def beam(probabilities: torch.Tensor, width: int) -> Reading:
    """The likeliest digit string of one strip's frame posteriors (T, 11) by prefix beam search
    keeping `width` prefixes; each digit's confidence is its posterior at the frame that added it
    on the likeliest path kept."""
    # prefix: [P(ends in blank), P(ends in its last digit), (confidence, frame) of each digit]
    beams: dict[tuple[int, ...], list] = {(): [1.0, 0.0, []]}
    for t, frame in enumerate(probabilities.double().tolist()):
        following: dict[tuple[int, ...], list] = defaultdict(lambda: [0.0, 0.0, []])
        for prefix, (blank, digit, emitted) in beams.items():
            total = blank + digit
            stay = following[prefix]
            stay[0] += total * frame[BLANK]
            if prefix:  # the last digit held over another frame
                stay[1] += digit * frame[prefix[-1]]
            stay[2] = stay[2] or emitted
            for label in range(BLANK):
                p = frame[label]
                if p < 1e-4:  # too unlikely to matter in any beam
                    continue
                longer = following[(*prefix, label)]
                # The same digit twice needs a blank between them.
                added = blank * p if prefix and prefix[-1] == label else total * p
                if added > longer[0] + longer[1]:
                    longer[2] = [*emitted, (p, t)]
                longer[1] += added
        kept = sorted(following.items(), key=lambda item: -(item[1][0] + item[1][1]))[:width]
        scale = sum(b + d for _, (b, d, _) in kept) or 1.0  # keep the sums from underflowing
        beams = {prefix: [b / scale, d / scale, e] for prefix, (b, d, e) in kept}
    digits, (_, _, emitted) = max(beams.items(), key=lambda item: item[1][0] + item[1][1])
    return Reading(list(digits), [float(p) for p, _ in emitted], [t for _, t in emitted])


def decode(
    probabilities: torch.Tensor, frames: torch.Tensor, method: str, width: int
) -> list[Reading]:
    """Every strip's reading by `method` (greedy or beam)."""
    if method == "greedy":
        return greedy(probabilities, frames)
    return [
        beam(strip[:length], width)
        for strip, length in zip(probabilities, frames.tolist(), strict=True)
    ]


def text(digits: list[int]) -> str:
    return "".join(map(str, digits))
