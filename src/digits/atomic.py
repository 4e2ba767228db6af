"""Files written whole or not at all: every command writes its results through `write_atomically`
(a hidden partial file, fsync, rename), so that a full disk, a read-only folder or a kill leaves the
previous file, or none, never half of one, and the user reads one line naming the file."""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from digits.errors import DigitsError

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from PIL import Image


def write_atomically(path: Path, data: memoryview | bytes, what: str = "the checkpoint") -> None:
    """`path` becomes `data` whole, or stays as it was (a DigitsError says why, naming `what`)."""
    partial: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = partial_file(path)
        with handle:
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
        if partial is not None:
            partial.unlink(missing_ok=True)
        raise DigitsError(
            f"{path}: could not write {what} ({error.strerror or error}); the previous one is kept"
        ) from error
    except BaseException:
        if partial is not None:
            partial.unlink(missing_ok=True)
        raise


def partial_file(path: Path) -> tuple[BinaryIO, Path]:
    """A new hidden file beside `path` to write it into before the rename: a name of its own, so
    that two processes writing `path` at once (two runs decompressing MNIST) never share one.
    (Not tempfile.mkstemp: its files are private to the user, the renamed file would be too.)"""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
    return partial.open("xb"), partial


def write_text(path: Path, text: str, what: str) -> None:
    write_atomically(path, text.encode(), what)


def save_image(image: Image.Image, path: Path, what: str = "the image") -> None:
    """A PIL image as a PNG file, written whole."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_atomically(path, buffer.getbuffer(), what)


def save_figure(figure: Figure, path: Path, what: str = "the figure", **options: object) -> None:
    """A matplotlib figure as a file of its suffix's format, written whole."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lstrip(".") or "png", **options)
    write_atomically(path, buffer.getbuffer(), what)
