"""Users' image files as the model's 28x28 input, decoded once: each file goes through the reading
preprocessing that `digits.predict` uses, and the result is kept in a cache keyed by the file's
content hash and the preprocessing, so later epochs and runs read no image again.

The cache is one file per preprocessing (`<cache_dir>/prepared-<preprocess>.pt`: uint8 images, the
hashes they belong to, and the files that could not be read, with why), written whole or not at all
(digits.atomic): a run killed while caching leaves the previous cache, never half of one.
"""

from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import torch
from rich.progress import track

import digits
from digits.atomic import write_atomically
from digits.errors import DigitsError
from digits.reading.images import load_grayscale
from digits.reading.preprocess import PREPROCESSORS

SHOW_PROGRESS_FROM = 200  # files to decode: fewer go by without a progress bar


def content_hash(path: Path) -> str:
    """The SHA-256 of a file's bytes: its key in the cache (renaming a file keeps its entry).
    Remembered for the file's size and time of change, so a run reads each file once."""
    status = path.stat()
    return _hash_of(str(path.resolve()), status.st_size, status.st_mtime_ns)


@functools.cache
def _hash_of(path: str, size: int, changed_ns: int) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def prepare(path: Path, preprocess: str) -> torch.Tensor:
    """One image file as the model sees it: 28x28 uint8, white ink on black. Raises DigitsError
    naming the file when it cannot be read or holds no ink."""
    digit = PREPROCESSORS[preprocess](load_grayscale(path))
    return (digit.clamp(0, 1) * 255).round().to(torch.uint8)


class PreparedImages:
    """The cache of one preprocessing in `folder`: `hash -> 28x28 uint8 image`, and the hashes of
    files that failed, with the reason."""

    def __init__(self, folder: Path, preprocess: str) -> None:
        self.file = folder.expanduser() / f"prepared-{preprocess}.pt"
        self.preprocess = preprocess
        self.images: dict[str, torch.Tensor] = {}
        self.failed: dict[str, str] = {}
        self._read()

    def _read(self) -> None:
        if not self.file.is_file():
            return
        try:
            saved = torch.load(self.file, weights_only=True)
        except Exception:  # a cache it cannot read is rebuilt: it only costs the decoding
            return
        if saved.get("digits_version") != digits.__version__:  # the preprocessing may differ
            return
        self.images = dict(zip(saved["hashes"], saved["images"], strict=True))
        self.failed = dict(saved["failed"])

    def add(self, files: Sequence[Path], hashes: Sequence[str]) -> None:
        """Decode the files not cached yet (a progress bar when they are many) and save the cache."""
        missing = [
            (path, key)
            for path, key in zip(files, hashes, strict=True)
            if key not in self.images and key not in self.failed
        ]
        if not missing:
            return
        steps = missing
        if len(missing) >= SHOW_PROGRESS_FROM:
            steps = track(missing, description=f"preparing {len(missing)} images")
        for path, key in steps:
            try:
                self.images[key] = prepare(path, self.preprocess)
            except DigitsError as error:
                self.failed[key] = str(error).removeprefix(f"{path}: ")
        self._write()

    def _write(self) -> None:
        hashes = list(self.images)
        saved = {
            "digits_version": digits.__version__,
            "hashes": hashes,
            "images": torch.stack([self.images[key] for key in hashes])
            if hashes
            else torch.empty(0, 28, 28, dtype=torch.uint8),
            "failed": self.failed,
        }
        buffer = io.BytesIO()
        torch.save(saved, buffer)
        write_atomically(self.file, buffer.getbuffer(), "the prepared-image cache")
