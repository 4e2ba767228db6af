"""Reading a standard set through torchvision's own class (USPS, EMNIST, QMNIST), offline from the
files in torchvision's layout, or downloading them with torchvision where allowed; a missing or
damaged file is one line naming the file expected, where, and how to get it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from digits.data.idx import file_md5
from digits.errors import DigitsError

Dataset = TypeVar("Dataset")


def read_set(
    make: Callable[[bool], Dataset],
    expected: list[Path],
    download: bool,
    what: str,
    otherwise: str = "",
) -> Dataset:
    """`make(download)`, once `expected` (the files torchvision reads) are there or may be
    downloaded. `what` names the set and split in messages (e.g. "EMNIST's digits, train"),
    `otherwise` another way out (", or ...")."""
    missing = [path for path in expected if not path.is_file()]
    if missing and not download:
        raise DigitsError(
            f"{missing[0]}: not found ({what}, in torchvision's layout); put the file there, "
            f"or allow data.download=true where the network does{otherwise}"
        )
    try:
        return make(download and bool(missing))
    except Exception as error:  # no network, a damaged file: torchvision's own complaint
        reason = " ".join(str(error).split())
        raise DigitsError(
            f"{expected[0].parent}: could not read or download {what} ({reason}); put its files "
            "there, in torchvision's layout"
        ) from error


def files_provenance(root: str, files: list[Path]) -> dict[str, Any]:
    """For a run's manifest: the set's folder and the MD5 of each of its files there."""
    return {
        "root": str(Path(root).expanduser().resolve()),
        "md5": {path.name: file_md5(path) for path in files if path.is_file()},
    }
