"""Holding a run directory: one live process writes in it at a time.

A run holds its directory with an exclusive lock on its `.lock` file, which the operating system
releases when the process ends, even when killed; the file says who holds it. A directory that
holds a run is never written into but by the run continuing it, or moved aside whole
(`overwrite=true`), never deleted."""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TextIO

from digits.errors import DigitsError
from digits.runs.run_dir import RunDir, SweepDir

# The run directories this process holds (owned): the entry point takes its run's before Hydra
# writes into it, and the run itself asks again.
HELD: set[Path] = set()


@contextmanager
def owned(run: RunDir) -> Iterator[None]:
    """Hold the run directory for this process, or raise DigitsError when another live run holds
    it. A directory this process already holds is held on (the lock is the process's)."""
    if run.path.resolve() in HELD:
        yield
        return
    with _locked(run) as handle, _holding(run, handle):
        yield


@contextmanager
def claimed(run: RunDir, continuing: bool, overwrite: bool) -> Iterator[Path | None]:
    """Hold the directory for a new run (or for `continuing` the run in it) before anything is
    written there. A directory that holds a run is refused, or with `overwrite` moved aside whole
    (never deleted): yields where it went, else None."""
    refused = run.holds_run() and not continuing and not overwrite
    if refused and not run.lock_file.exists():  # no run could hold it: say so, lock nothing
        raise _holds_run(run)
    with ExitStack() as held:
        handle = held.enter_context(_locked(run))
        aside = None
        if run.holds_run() and not continuing:
            if not overwrite:
                raise _holds_run(run)
            aside = move_aside(run.path)
            held.close()  # the old run's lock went with it
            handle = held.enter_context(_locked(run))
        held.enter_context(_holding(run, handle))
        yield aside


def claim_sweep(sweep: SweepDir, continuing: bool, overwrite: bool) -> Path | None:
    """Before a multirun starts here: a sweep directory that holds jobs is refused (but by a
    search `continuing` its own study there), or moved aside with `overwrite`: returns where it
    went, else None."""
    jobs = sweep.jobs() if sweep.path.is_dir() else []
    if not jobs or (continuing and sweep.study_file.is_file()):
        return None
    if not overwrite:
        raise DigitsError(
            f"hydra.sweep.dir={sweep.path}: holds a multirun's jobs already "
            f"({', '.join(job.path.name for job in jobs[:5])}); give another hydra.sweep.dir, "
            "or add overwrite=true to move it aside"
        )
    return move_aside(sweep.path)


def check_free(run: RunDir) -> None:
    """Raise DigitsError if another live run holds the directory (nothing is created)."""
    if run.lock_file.is_file():
        with run.lock_file.open("a+") as handle:
            _lock(run, handle)


def move_aside(path: Path) -> Path:
    """Rename a directory to a free sibling `<name>.replaced-<time>`; return that path."""
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    aside = path.with_name(f"{path.name}.replaced-{stamp}")
    number = 1
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.replaced-{stamp}-{number}")
    path.rename(aside)
    return aside


def _holds_run(run: RunDir) -> DigitsError:
    return DigitsError(
        f"hydra.run.dir={run.path}: holds a run already ({run.status()}); give another "
        "hydra.run.dir, add overwrite=true to move that run aside, or (digits.train) continue "
        "it with resume=<dir>"
    )


@contextmanager
def _locked(run: RunDir) -> Iterator[TextIO]:
    run.path.mkdir(parents=True, exist_ok=True)
    with run.lock_file.open("a+") as handle:
        _lock(run, handle)
        yield handle


@contextmanager
def _holding(run: RunDir, handle: TextIO) -> Iterator[None]:
    """Say in the lock file who holds it, and remember that this process does."""
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    key = run.path.resolve()
    HELD.add(key)
    try:
        yield
    finally:
        HELD.discard(key)


def _lock(run: RunDir, handle: TextIO) -> None:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        raise DigitsError(
            f"hydra.run.dir={run.path}: another run ({holder}) is writing there; give "
            "another hydra.run.dir, or wait for that run to end"
        ) from error
