"""Serve a trained model: `python -m digits.serve ckpt_path=<file>` (a checkpoint or an .onnx file).

Runs a web server (FastAPI on uvicorn) on host:port (this machine only, unless `host=` says
otherwise): a page to draw or photograph a digit or a number at `/` (a number reader's file,
model=crnn: numbers only, each row read whole), the JSON API `POST /predict`, `GET /health`,
`GET /ready`, `GET /model` and the API's docs at `/docs`. The model is loaded once, in the
background while the server already listens, and run by onnxruntime; a checkpoint is exported to
ONNX in memory first, the same export `digits.export` writes."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from pathlib import Path

import hydra
import uvicorn
from omegaconf import DictConfig, OmegaConf

from digits.cli import launch, silence_known_warnings
from digits.config import config_dir
from digits.errors import DigitsError, reports_user_errors
from digits.exported.onnx_model import OnnxModel, is_onnx, reads_numbers
from digits.exported.strip_reader import OnnxStripReader
from digits.serving.app import create_app
from digits.serving.connections import with_header_deadline
from digits.serving.options import ServeOptions

SHUTDOWN_GRACE_S = 3


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="serve")
@reports_user_errors
def hydra_main(cfg: DictConfig) -> None:
    """Load the model, then serve until interrupted (Ctrl+C)."""
    silence_known_warnings()

    def load() -> OnnxModel | OnnxStripReader:
        path = cfg.ckpt_path
        if not is_onnx(path):
            # A checkpoint is exported in memory: torch's exporter and the onnx package, which
            # an .onnx file does not need.
            from digits.exported.formats import onnx_model_of

            return onnx_model_of(path)
        return OnnxStripReader(path) if reads_numbers(path) else OnnxModel(path)

    def stop() -> None:  # the model cannot load: nothing to serve
        server.should_exit = True

    options = ServeOptions(**OmegaConf.to_container(cfg, resolve=True))
    app = create_app(load, str(cfg.ckpt_path), options, on_load_failure=stop)
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        root_path=options.root_path,
        log_level="warning",
        access_log=options.access_log,
        # On SIGTERM or Ctrl+C, requests in flight get this long; then they are cancelled and
        # their readings stop at their next step (ServedModel.close), so the process ends soon.
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        timeout_keep_alive=options.keep_alive_s,
        http=with_header_deadline(options.header_timeout_s),
    )
    if cfg.access_log:  # uvicorn logs each request at INFO, under its warning level above
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    server = uvicorn.Server(config)
    listening = listen(cfg.host, cfg.port)  # before the model loads: a taken port is one line
    print(
        f"digits: serving {cfg.ckpt_path} on http://{cfg.host}:{cfg.port}/ "
        "(ready once /ready answers 200; Ctrl+C stops)"
    )
    # uvicorn raises Ctrl+C again once it has shut down, but through asyncio's own SIGINT handler,
    # which only cancels the serving task: one that is ending anyway then returns normally (seen
    # under load), so run() may also return as if nothing had happened. Either way: stopped.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[listening])
    if app.state.served.failure is not None:
        raise DigitsError(app.state.served.failure)
    print("digits: stopped")


def check_serve(cfg: DictConfig) -> None:
    """The model file exists and the address can be listened on, before anything loads."""
    if not str(cfg.host).strip():  # uvicorn would listen on every network, unasked
        raise DigitsError(
            f"host={cfg.host}: empty; give an address: 127.0.0.1 (this machine only) or 0.0.0.0 "
            "(every network it is on)"
        )
    if cfg.root_path and not (cfg.root_path.startswith("/") and not cfg.root_path.endswith("/")):
        raise DigitsError(
            f"root_path={cfg.root_path}: a path prefix starts with / and does not end with one "
            '(e.g. /digits), or "" for none'
        )
    for origin in cfg.cors_origins:
        if not re.fullmatch(r"\*|https?://[^/\s]+", str(origin)):
            raise DigitsError(
                f"cors_origins: {origin} is no origin; give scheme://host[:port] per site, e.g. "
                "'[https://example.org,http://127.0.0.1:3000]', or '[*]' for any"
            )
    if not Path(cfg.ckpt_path).is_file():
        problem = "a folder" if Path(cfg.ckpt_path).is_dir() else "no such file"
        raise DigitsError(
            f"ckpt_path={cfg.ckpt_path}: {problem}; give a checkpoint (.ckpt) or an exported .onnx"
        )
    listen(cfg.host, cfg.port).close()


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port, or one line saying why not (another server there)."""
    try:
        return socket.create_server((host, port))
    except OSError as error:  # socket's own text repeats the address
        reason = (
            os.strerror(error.errno) if (error.errno or 0) > 0 else error.strerror or str(error)
        )
        raise DigitsError(
            f"host={host} port={port}: cannot listen there ({reason}); "
            "choose another port= (or host=)"
        ) from error


def main() -> None:
    """`python -m digits.serve`: check the command line, then run."""
    launch("serve", hydra_main, check_serve)


if __name__ == "__main__":
    main()
