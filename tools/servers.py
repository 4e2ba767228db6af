"""A server started for a tool or a test (digits.serve, TensorBoard, optuna-dashboard) on
127.0.0.1, waited for until it answers, and stopped afterwards."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


@contextmanager
def serving(command: list[str], ready_url: str, seconds: float = 120, **popen) -> Iterator[None]:
    """Run `command` until the block ends, from the moment `ready_url` answers; RuntimeError with
    the end of its output if it exits first or does not answer within `seconds`."""
    # Its output goes to a file: a pipe nobody reads would fill up and stall a busy server.
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, **popen)
        try:
            wait_until_answered(process, output, ready_url, seconds)
            yield
        finally:
            process.terminate()
            process.wait(timeout=30)


def wait_until_answered(process: subprocess.Popen, output, url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            output.seek(0)
            said = output.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{process.args[0]} exited: {said}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{process.args[0]}: {url} did not answer") from None
            time.sleep(0.25)
