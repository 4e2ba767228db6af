"""The model a server answers with, loaded in the background so that the server listens at once
(`/health` answers while a checkpoint is still being exported): ready only once it is loaded and
one real inference, on a blank image, has run (`/ready`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from digits.errors import DigitsError
from digits.exported.strip_reader import OnnxStripReader
from digits.inference.predictor import Predictor
from digits.serving.batching import Model

log = logging.getLogger(__name__)


def reader_of(metadata: dict[str, str]) -> str:
    """How an exported model reads a number (digits.inference.predictor.Predictor's `reader`):
    a number reader's export says `reads: numbers` (digits.exported.strip_reader)."""
    return "sequence" if metadata.get("reads") == "numbers" else "segment"


class ServedModel:
    """`load` run once in a thread by `start`; `predictor` is None until it has loaded and
    answered a blank image, `failure` says why it never will. `on_failure` runs after a failure
    (digits.serve stops the server there)."""

    def __init__(
        self,
        load: Callable[[], Model | OnnxStripReader],
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self._load, self._on_failure = load, on_failure
        self.predictor: Predictor | None = None
        self.metadata: dict[str, str] = {}
        self.failure: str | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()  # set at shutdown: readings in progress stop
        self.load_seconds: float | None = None  # once loaded: how long it took

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="load-model", daemon=True)
        self._thread.start()

    def wait(self, seconds: float | None = None) -> bool:
        """Wait for the loading to end (at most `seconds`); whether the model is ready."""
        if self._thread is not None:
            self._thread.join(seconds)
        return self.predictor is not None

    def close(self) -> None:
        """Stop the readings in progress and what a loaded model runs in the background (a
        batching thread). A model still loading is not waited for: its thread, and any it starts,
        end with the process."""
        self.stopping.set()
        close = getattr(self.predictor.model, "close", None) if self.predictor else None
        if close is not None:
            close()

    def _run(self) -> None:
        start = time.perf_counter()
        try:
            model = self._load()
            predictor = Predictor(model, reader=reader_of(model.metadata))
            predictor.warm_up()
            self.metadata = model.metadata
            self.load_seconds = time.perf_counter() - start
            self.predictor = predictor
        except DigitsError as error:
            self.failure = str(error)
        except Exception as error:  # a bug, not the user's file: the log keeps the traceback
            log.exception("loading the model failed")
            self.failure = f"loading the model failed ({type(error).__name__}: {error})"
        if self.failure is not None and self._on_failure is not None:
            self._on_failure()

    @property
    def reads_numbers(self) -> bool:
        """Whether the loaded model is a number reader (model=crnn: rows read whole)."""
        return self.predictor is not None and self.predictor.reader == "sequence"

    @property
    def not_ready(self) -> str:
        """Why requests cannot be answered yet (or ever)."""
        return self.failure or "the model is still loading: try again shortly (GET /ready)"
