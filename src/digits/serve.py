"""Serve a trained model: `python -m digits.serve ckpt_path=<file>` (a checkpoint or an .onnx file).

Runs a web server (FastAPI on uvicorn) on host:port (this machine only, unless `host=` says
otherwise): a page to draw or photograph a digit at `/`, the JSON API `POST /predict`, `GET /health`
and the API's docs at `/docs`. The model is loaded once and run by onnxruntime; a checkpoint is
exported to ONNX in memory first, the same export `digits.export` writes."""

from __future__ import annotations

import hydra
import uvicorn
from omegaconf import DictConfig

from digits.cli import launch, silence_known_warnings
from digits.config import config_dir
from digits.config.checks import check_serve
from digits.errors import reports_user_errors
from digits.exported.formats import onnx_model_of
from digits.exported.onnx_model import OnnxModel, is_onnx
from digits.inference.predictor import Predictor
from digits.serving.app import create_app


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="serve")
@reports_user_errors
def hydra_main(cfg: DictConfig) -> None:
    """Load the model, then serve until interrupted (Ctrl+C)."""
    silence_known_warnings()
    model = OnnxModel(cfg.ckpt_path) if is_onnx(cfg.ckpt_path) else onnx_model_of(cfg.ckpt_path)
    app = create_app(
        Predictor(model),
        model.metadata["model"],
        preprocess=cfg.preprocess,
        max_upload_bytes=int(cfg.max_upload_mb * 2**20),
        top_k=cfg.top_k,
        min_confidence=cfg.min_confidence,
        body_timeout_s=cfg.body_timeout_s,
    )
    print(f"digits: serving {cfg.ckpt_path} on http://{cfg.host}:{cfg.port}/ (Ctrl+C stops)")
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")


def main() -> None:
    """`python -m digits.serve`: check the command line, then run."""
    launch("serve", hydra_main, check_serve)


if __name__ == "__main__":
    main()
