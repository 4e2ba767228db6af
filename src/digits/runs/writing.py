"""Writing a run's files: checkpoints so that a kill, a power loss or a full disk never leaves a
broken one, and the JSON records people and tools read."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from fsspec.utils import get_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only

from digits.atomic import write_atomically, write_text


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic on every local filesystem: the file is written
    beside its target, flushed to disk, then renamed over it, so the target is always either the
    previous checkpoint or the new one whole. A write that fails (a full disk) stops with one line
    and leaves the previous checkpoint. Remote paths (s3://...) go to Lightning's writer.

    Why not Lightning's: it writes through fsspec's transaction, whose temporary file lies in the
    system's temp folder; when the run directory is on another filesystem (NFS, a mounted disk), the
    final move is a copy into the target, which a kill interrupts half-way."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        if storage_options is not None or get_protocol(str(path)) != "file":
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_atomically(Path(path), buffer.getbuffer())


@rank_zero_only
def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """`data` as indented JSON, keys sorted (by the first process only, under DDP)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n", path.name)
