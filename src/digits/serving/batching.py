"""Concurrent requests classified together: the images that several requests send within a few
milliseconds of each other go to the model in one call, as inference servers batch them."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Protocol

import torch

from digits.inference.predictor import ImageModel


class Model(ImageModel, Protocol):
    """What the server runs: a model with its export's metadata (digits.exported.formats)."""

    metadata: dict[str, str]


Waiting = tuple[torch.Tensor, Future]  # a caller's images, and where its probabilities go


class BatchingModel:
    """`model` behind a queue: callers in any thread block in `probabilities` while one worker
    thread runs the model once for everything queued, waiting up to `max_wait_s` after the first
    caller for more (and no longer once `max_images` images are queued; one caller's images are
    never split). Each caller gets its own rows back, or the model's exception.

    Why ours: the batching of Ray Serve (`@serve.batch`), LitServe or Triton comes with their own
    server; the app stays FastAPI's, and this is a queue and a thread."""

    def __init__(self, model: Model, max_images: int, max_wait_s: float) -> None:
        self.model, self.metadata = model, model.metadata
        self.max_images, self.max_wait_s = max_images, max_wait_s
        self._queue: queue.SimpleQueue[Waiting | None] = queue.SimpleQueue()
        self._closed = False
        # Checking _closed and queueing happen together, so nothing is queued behind close()'s
        # stop marker, where no worker would ever answer it.
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="model-batches", daemon=True)
        self._worker.start()

    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities (N, 10) for these images, computed with whatever else is queued."""
        answer: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the model's batching thread has stopped")
            self._queue.put((images, answer))
        return answer.result()

    def close(self) -> None:
        """Answer what is queued, then stop the worker thread."""
        with self._lock:
            self._closed = True
            self._queue.put(None)
        self._worker.join()

    def _work(self) -> None:
        while (first := self._queue.get()) is not None:
            waiting = [first]
            stop = self._collect(waiting)
            self._answer(waiting)
            if stop:
                return

    def _collect(self, waiting: list[Waiting]) -> bool:
        """Add what arrives within max_wait_s to `waiting`; whether close() was asked meanwhile."""
        deadline = time.monotonic() + self.max_wait_s
        queued = len(waiting[0][0])
        while queued < self.max_images:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if item is None:
                return True
            waiting.append(item)
            queued += len(item[0])
        return False

    def _answer(self, waiting: list[Waiting]) -> None:
        try:
            probabilities = self.model.probabilities(torch.cat([images for images, _ in waiting]))
        except Exception as error:  # each caller raises it, as a direct call would
            for _, answer in waiting:
                answer.set_exception(error)
            return
        rows = probabilities.split([len(images) for images, _ in waiting])
        for (_, answer), own in zip(waiting, rows, strict=True):
            answer.set_result(own)
