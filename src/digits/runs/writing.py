"""Writing a run's files: checkpoints so that a kill, a power loss or a full disk never leaves a
broken one, and the JSON records people and tools read."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from fsspec.utils import get_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only

from digits.errors import DigitsError


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


def write_atomically(path: Path, data: memoryview | bytes, what: str = "the checkpoint") -> None:
    """`path` becomes `data` whole, or stays as it was (a DigitsError says why, naming `what`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself reaches the disk
        finally:
            os.close(folder)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DigitsError(
            f"{path}: could not write {what} ({error.strerror or error}); the previous one is kept"
        ) from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@rank_zero_only
def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """`data` as indented JSON, keys sorted (by the first process only, under DDP)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
