"""MNIST's files: the four IDX files in torchvision's layout (`<root>/MNIST/raw/`), checked and decoded."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import shutil
import struct
import zlib
from pathlib import Path

import torch

from digits.atomic import partial_file
from digits.errors import DigitsError

IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801  # unsigned bytes, 3 or 1 dimensions
RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# The MD5 of each file as torchvision's official .gz files (MNIST.resources) decompress to it.
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
TRAIN_IMAGES = 60_000  # MNIST's training set, from which validation is split off


def raw_folder(root: str | Path) -> Path:
    return Path(root) / "MNIST" / "raw"


def missing_raw_files(root: str | Path) -> list[str]:
    return [name for name in RAW_FILES if not (raw_folder(root) / name).is_file()]


def _corrupt(path: Path, problem: str) -> DigitsError:
    return DigitsError(f"{path}: {problem}; delete it so that it is downloaded (or copied) again")


def gunzip_raw_files(raw: Path) -> None:
    """Decompress IDX files that are only there as .gz (atomically: never a half-written file)."""
    for name in RAW_FILES:
        packed, target = raw / f"{name}.gz", raw / name
        if target.is_file() or not packed.is_file():
            continue
        try:
            sink, partial = partial_file(target)
        except OSError as error:
            raise DigitsError(
                f"{raw}: cannot write the decompressed {name} there ({error.strerror}); make the "
                "folder writable, or decompress the .gz files yourself"
            ) from error
        try:
            with gzip.open(packed) as source, sink:
                shutil.copyfileobj(source, sink)
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            partial.unlink(missing_ok=True)
            raise _corrupt(packed, f"gzip does not decompress ({error})") from error
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(target)  # another run decompressing it at once renames the same bytes


def _check_header(path: Path, is_images: bool) -> int:
    """The item count an IDX file's header promises, after checking magic number, shape and size."""
    header_size = 16 if is_images else 8
    with path.open("rb") as handle:
        header = handle.read(header_size)
    if len(header) < header_size:
        raise _corrupt(path, f"only {len(header)} bytes, shorter than an IDX header")
    magic, count = struct.unpack(">II", header[:8])
    expected_magic = IDX_IMAGES if is_images else IDX_LABELS
    if magic != expected_magic:
        raise _corrupt(path, f"wrong magic number {magic:#010x} (expected {expected_magic:#010x})")
    item_size = 1
    if is_images:
        rows, cols = struct.unpack(">II", header[8:16])
        if (rows, cols) != (28, 28):
            raise _corrupt(path, f"images are {rows}x{cols}, not 28x28")
        item_size = rows * cols
    expected_size = header_size + count * item_size
    size = path.stat().st_size
    if size != expected_size:
        raise _corrupt(
            path, f"{size} bytes but its header promises {count} items ({expected_size} bytes)"
        )
    return count


def check_raw_files(raw: Path) -> None:
    """Check every IDX file's magic number, shape and size, that labels match images and are
    digits, so that a damaged file stops the run before any training on partial data."""
    counts = {name: _check_header(raw / name, "images" in name) for name in RAW_FILES}
    for name in RAW_FILES[1::2]:  # the label files: one byte per image after an 8-byte header
        labels = (raw / name).read_bytes()[8:]
        if labels and max(labels) > 9:
            index = next(i for i, label in enumerate(labels) if label > 9)
            raise _corrupt(raw / name, f"label {labels[index]} at item {index} is not a digit 0-9")
    for prefix in ("train", "t10k"):
        images = counts[f"{prefix}-images-idx3-ubyte"]
        labels = counts[f"{prefix}-labels-idx1-ubyte"]
        if images != labels:
            raise _corrupt(
                raw / f"{prefix}-labels-idx1-ubyte", f"{labels} labels for {images} images"
            )


def ensure_mnist(root: str | Path, download: bool) -> None:
    """Make sure the four IDX files are in `root`/MNIST/raw/ (decompressing .gz files, downloading
    with torchvision if allowed), or raise DigitsError naming the setting (data.root). A failed download
    leaves no folders behind."""
    raw = raw_folder(root)
    if raw.is_dir():
        gunzip_raw_files(raw)
    missing = missing_raw_files(root)
    if not missing:
        return
    hint = (
        f"MNIST not found: {raw} lacks {', '.join(missing)}; put the four IDX files there "
        "or point data.root (or DIGITS_DATA_DIR) at the folder that holds MNIST/raw/"
    )
    if not download:
        raise DigitsError(hint + " (download is off: data.download=false)")
    from torchvision.datasets import MNIST  # here: torchvision takes a second to import

    made = [f for f in (raw, *raw.parents) if not f.exists()]
    try:
        MNIST(str(root), train=True, download=True)
        MNIST(str(root), train=False, download=True)
    except Exception as error:  # torchvision raises several kinds on a failed download
        for folder in made:  # deepest first; only empty ones
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise DigitsError(f"{hint} (download failed: {error})".replace("\n", " ")) from error


def check_mnist(root: str | Path) -> int:
    """The IDX files are whole; returns how many training images they hold."""
    check_raw_files(raw_folder(root))
    return _check_header(raw_folder(root) / RAW_FILES[1], is_images=False)


def split_md5(root: str | Path, train: bool) -> str:
    """A fingerprint of one split's decoded images and labels: two runs whose fingerprints match
    were tested on the same images, whatever the files' compression."""
    return tensors_md5(*load_mnist(root, train))


def tensors_md5(images: torch.Tensor, labels: torch.Tensor) -> str:
    """The MD5 of decoded images and their labels (any data option's test set)."""
    digest = hashlib.md5(images.cpu().numpy().tobytes(), usedforsecurity=False)
    digest.update(labels.cpu().numpy().tobytes())
    return digest.hexdigest()


def file_md5(path: Path) -> str:
    """The MD5 of a file's bytes (integrity, not security)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


def load_mnist(root: str | Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode one MNIST split from its IDX files into (uint8 N x 28 x 28 images, int64 labels)."""
    from torchvision.datasets import MNIST  # here: torchvision takes a second to import

    dataset = MNIST(str(root), train=train, download=False)
    return dataset.data, dataset.targets
