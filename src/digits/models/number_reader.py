"""The LightningModule of the sequence reader: a network that scores every frame of a strip
(model=crnn) trained with CTC on number strips (data=numbers), read by greedy or beam decoding.

Input contract: strips as 0-1 floats (N, 1, 32, W), white ink on black, laid out by
digits.reading.strips, with their widths (N,); the module normalises them itself with the mean and
std its checkpoint stores, so a checkpoint alone reads a number. Its accuracy (val/acc, test/acc)
is whole numbers read right; the character error rate (val/cer, test/cer) is the edit distance
over the digits written."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torchmetrics import MeanMetric
from torchmetrics.text import CharErrorRate
from torchvision.transforms import v2

from digits.constraints import POSITIVE, OneOf, Range
from digits.models.base import DigitsModule
from digits.models.crnn import BLANK, STRIDE
from digits.models.ctc import MAX_BEAM, Reading, decode, text
from digits.reading.strips import MAX_STRIP_WIDTH
from digits.runs.per_image import PerImageResults

# A strip, its digits (-1 after the last) and its width.
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
DECODINGS = ("greedy", "beam")
# The longest reading a test step reports (a frame emits at most one digit).
MAX_READING = MAX_STRIP_WIDTH // STRIDE


def label_texts(labels: torch.Tensor) -> list[str]:
    """Each row of digits, -1 after the last, as its text."""
    return [text([d for d in row if d >= 0]) for row in labels.tolist()]


class NumberReader(DigitsModule):
    """Reads strips of digits. Takes the network, optimizer and scheduler as configs (dicts with
    `_target_`) and instantiates them itself, so a checkpoint alone rebuilds the model; its own
    settings (conf/module/sequence.yaml) are the input normalisation and the decoding."""

    def __init__(
        self,
        net: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None,
        mean: float,
        std: Annotated[float, POSITIVE],
        decoding: Annotated[str, OneOf(DECODINGS)],
        beam_width: Annotated[int, Range(ge=1, le=MAX_BEAM)],
    ) -> None:
        super().__init__()
        self.keep_settings(
            net, optimizer, scheduler, mean=mean, std=std, decoding=decoding, beam_width=beam_width
        )
        self.normalize = v2.Normalize([mean], [std])
        self.net = instantiate(self.hparams.net, _convert_="all")
        self.val_acc, self.test_acc = MeanMetric(), MeanMetric()
        self.val_cer, self.test_cer = CharErrorRate(), CharErrorRate()

    def forward(self, strips: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        """Log-probabilities (N, frames, 11) of the digits 0-9 and the blank (last) at every frame
        of 0-1 strips (N, 1, 32, W), white ink on black, each `widths` wide (default: W)."""
        scores = self.net(self.normalize(strips.to(self.dtype)), widths)
        return F.log_softmax(scores.float(), dim=2)

    def read(self, strips: torch.Tensor, widths: torch.Tensor) -> list[Reading]:
        """Each strip's digits and their confidences, decoded as the module's `decoding` says."""
        frames = self.net.frames(widths)
        probabilities = self(strips, widths).exp().cpu()
        return decode(probabilities, frames.cpu(), self.hparams.decoding, self.hparams.beam_width)

    def _step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        strips, labels, widths = batch
        log_probs = self(strips, widths)
        frames = self.net.frames(widths)
        written = labels >= 0
        loss = F.ctc_loss(
            log_probs.transpose(0, 1),
            labels[written],
            frames,
            written.sum(dim=1),
            blank=BLANK,
            zero_infinity=True,  # a strip too narrow for its digits adds nothing, not inf
        )
        return loss, log_probs, frames

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss, log_probs, frames = self._step(batch)
        read = decode(log_probs.detach().exp().cpu(), frames.cpu(), "greedy", 1)
        right = [r.text == t for r, t in zip(read, label_texts(batch[1]), strict=True)]
        self.count_training(loss, torch.tensor(right, device=loss.device))
        return loss

    def _scored(self, batch: Batch, split: str) -> tuple[torch.Tensor, list[Reading]]:
        loss, log_probs, frames = self._step(batch)
        read = decode(log_probs.exp().cpu(), frames.cpu(), self.hparams.decoding,
                      self.hparams.beam_width)  # fmt: skip
        truth, texts = label_texts(batch[1]), [r.text for r in read]
        accuracy, cer = getattr(self, f"{split}_acc"), getattr(self, f"{split}_cer")
        accuracy.update(torch.tensor([t == r for t, r in zip(truth, texts, strict=True)]).float())
        cer.update(texts, truth)
        self.log(f"{split}/loss", loss, on_step=False, on_epoch=True, prog_bar=split == "val",
                 sync_dist=True, batch_size=len(texts))  # fmt: skip
        self.log(f"{split}/acc", accuracy, on_step=False, on_epoch=True, prog_bar=split == "val")
        self.log(f"{split}/cer", cer, on_step=False, on_epoch=True)
        return loss, read

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        """Logs val/loss, val/acc (whole numbers right) and val/cer."""
        return self._scored(batch, "val")[0]

    def on_validation_epoch_end(self) -> None:
        self.log_best(self.val_acc.compute())

    def test_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        """Logs test/loss, test/acc and test/cer; returns each strip's reading as a row of
        (its confidence, its digits, -1 after them), for the run's per-image results."""
        _, read = self._scored(batch, "test")
        rows = torch.full((len(read), 1 + MAX_READING), -1.0)
        for row, reading in enumerate(read):
            digits = reading.digits[:MAX_READING]
            rows[row, 0] = reading.confidence
            rows[row, 1 : 1 + len(digits)] = torch.tensor(digits, dtype=torch.float)
        return rows

    def predict_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> list[Reading]:
        """Each strip's reading for a batch of (strips, widths)."""
        return self.read(*batch[:2])

    def results_of(self, outputs: torch.Tensor, labels: torch.Tensor) -> PerImageResults:
        """The test step's rows and the labels as each strip's number, reading and confidence."""
        readings = [text([int(d) for d in row[1:] if d >= 0]) for row in outputs]
        return PerImageResults(
            np.array(label_texts(labels), dtype=object),
            np.array(readings, dtype=object),
            outputs[:, 0].numpy(),
        )
