"""Reading users' image files: which files, and each as a grayscale array, whatever its format."""

from __future__ import annotations

import glob
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from digits.errors import DigitsError

# Refuse images over 50 megapixels: a phone photo is ~12, a decompression bomb is far more.
MAX_PIXELS = 50_000_000
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class ImageTooLarge(DigitsError):
    """An image with more pixels than MAX_PIXELS (a decompression bomb, or a panorama)."""


def image_files(paths: Iterable[str]) -> list[Path]:
    """Files as given, folders as the image files inside them (sorted, not recursive), and
    patterns such as photos/*.jpg as the files they match (no shell expands a value in a Hydra
    list)."""
    files: list[Path] = []
    for name in paths:
        path = Path(name).expanduser()
        matches = sorted(glob.glob(str(path))) if glob.has_magic(str(path)) else []
        if matches and not path.exists():
            files += [Path(match) for match in matches if Path(match).is_file()]
        elif path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(path)
    return files


def pixel_count(stream: BinaryIO) -> int:
    """How many pixels an image will decode to, from its header alone (0 where Pillow does not
    know the file: decoding it then says why)."""
    position = stream.tell()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a bomb's warning: load_grayscale refuses it
            with Image.open(stream) as image:
                width, height = image.size
        return width * height
    except Exception:  # any header Pillow cannot read: load_grayscale names the problem
        return 0
    finally:
        stream.seek(position)


def load_grayscale(path: Path, stream: BinaryIO | None = None) -> np.ndarray:
    """Read any common image as float32 grayscale 0-255: EXIF orientation applied, transparency
    composited on white, 16-bit scaled down. Reads `stream` when given (an upload), else the file;
    raises DigitsError naming `path` when it can't."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pillow on damaged metadata: the
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # image still reads
            with Image.open(stream or path) as image:
                return _grayscale(ImageOps.exif_transpose(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageTooLarge(f"{path}: image too large ({error})".split(". ")[0]) from error
    except UnidentifiedImageError as error:
        raise DigitsError(f"{path}: not an image (or a format PIL cannot read)") from error
    except MemoryError:
        raise
    # Pillow's decoders raise what they meet on a damaged or crafted file (OSError, SyntaxError,
    # ValueError, TypeError, NotImplementedError, struct.error, ...): each is the file's fault.
    except Exception as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise DigitsError(f"{path}: unreadable or damaged image ({reason})") from error


def _grayscale(image: Image.Image) -> np.ndarray:
    image.load()
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float32)
        return array * (255.0 / max(float(array.max()), 1.0))
    if image.mode == "P" or "A" in image.getbands():
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("L"), dtype=np.float32)
