"""Concurrent requests' images classified together (digits.serving.batching)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from digits.serving.batching import BatchingModel


class Recording:
    """A stand-in model whose output rows echo their input images (image i filled with the
    value v answers a row of v's), recording how many images each call held."""

    def __init__(self, fail_on: float | None = None) -> None:
        self.metadata = {"model": "recording"}
        self.calls: list[int] = []
        self.fail_on = fail_on

    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        self.calls.append(len(images))
        if self.fail_on is not None and (images == self.fail_on).any():
            raise ValueError("the model failed")
        return images.flatten(1)[:, :10].clone()


def images(value: float, count: int = 1) -> torch.Tensor:
    return torch.full((count, 1, 28, 28), value)


def at_once(model: BatchingModel, batches: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each batch from its own thread, all released together; each thread's answer."""
    start = threading.Barrier(len(batches))

    def call(batch: torch.Tensor) -> torch.Tensor:
        start.wait()
        return model.probabilities(batch)

    with ThreadPoolExecutor(len(batches)) as pool:
        return list(pool.map(call, batches))


def test_concurrent_callers_share_model_calls_and_each_gets_its_own_rows() -> None:
    recording = Recording()
    model = BatchingModel(recording, max_images=64, max_wait_s=0.2)
    counts = [1, 2, 3, 1, 1, 4, 1, 2]
    sent = [images(value, count) for value, count in enumerate(counts, start=1)]
    answers = at_once(model, sent)
    model.close()
    for batch, answer in zip(sent, answers, strict=True):
        assert torch.equal(answer, batch.flatten(1)[:, :10])
    assert sum(recording.calls) == 15
    assert len(recording.calls) < 8  # at least two callers shared a call


def test_a_call_holds_at_most_max_images_but_never_splits_a_caller() -> None:
    recording = Recording()
    model = BatchingModel(recording, max_images=4, max_wait_s=0.2)
    at_once(model, [images(v) for v in range(1, 13)])
    assert sum(recording.calls) == 12 and max(recording.calls) <= 4
    (answer,) = at_once(model, [images(7.0, 9)])
    model.close()
    assert answer.shape == (9, 10) and recording.calls[-1] == 9


def test_without_waiting_each_caller_is_still_answered() -> None:
    recording = Recording()
    model = BatchingModel(recording, max_images=32, max_wait_s=0.0)
    answers = at_once(model, [images(v) for v in range(1, 7)])
    model.close()
    assert [float(answer[0, 0]) for answer in answers] == [1, 2, 3, 4, 5, 6]
    assert sum(recording.calls) == 6


def test_a_failing_call_raises_in_its_callers_and_the_next_calls_are_answered() -> None:
    model = BatchingModel(Recording(fail_on=3.0), max_images=32, max_wait_s=0.0)
    with pytest.raises(ValueError, match="the model failed"):
        model.probabilities(images(3.0))
    assert float(model.probabilities(images(5.0))[0, 0]) == 5.0
    model.close()


def test_once_closed_it_answers_what_was_queued_and_refuses_more() -> None:
    recording = Recording()
    model = BatchingModel(recording, max_images=32, max_wait_s=0.05)
    with ThreadPoolExecutor(3) as pool:
        pending = [pool.submit(model.probabilities, images(v)) for v in (1.0, 2.0, 3.0)]
        answered = [float(future.result()[0, 0]) for future in pending]
    model.close()
    assert answered == [1.0, 2.0, 3.0]
    with pytest.raises(RuntimeError, match="stopped"):
        model.probabilities(images(1.0))
