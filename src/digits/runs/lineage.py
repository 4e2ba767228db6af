"""Where a run's weights came from: `init_from=` names a parent (a checkpoint file, or a run
directory meaning its best checkpoint), as does `digits.adapt ckpt_path=` (with its method). The run records it in its manifest.json and in each of
its checkpoints (`parent`), so compare, the TensorBoard card and the server's /model show it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from digits.errors import DigitsError
from digits.runs.run_dir import RunDir, md5


def parent_checkpoint(init_from: str, key: str = "init_from") -> Path:
    """The checkpoint file `init_from=` (or `key`) means: the file, or a run directory's best
    checkpoint."""
    path = Path(init_from).expanduser()
    if not path.exists():
        raise DigitsError(f"{key}={init_from}: no such file or run directory")
    if not path.is_dir():
        return path
    if not RunDir(path).is_run():
        raise DigitsError(
            f"{key}={init_from}: a folder that holds no run (give a run directory, or a "
            "checkpoint file: <run>/checkpoints/<name>.ckpt)"
        )
    try:
        return RunDir(path).best_checkpoint()
    except DigitsError as error:  # its text names the run as run=<dir>
        reason = str(error).removeprefix(f"run={path}: ")
        raise DigitsError(f"{key}={init_from}: {reason}") from error


def parent_record(init_from: str, key: str = "init_from") -> dict[str, Any]:
    """The parent as the run records it: as given (under `key`: init_from=, or digits.adapt's
    ckpt_path=), the checkpoint file and its MD5, its run."""
    checkpoint = parent_checkpoint(init_from, key).resolve()
    run = RunDir.of_checkpoint(checkpoint)
    return {
        key: init_from,
        "checkpoint": str(checkpoint),
        "md5": md5(checkpoint),
        "run": str(run.path) if run is not None else None,
    }
