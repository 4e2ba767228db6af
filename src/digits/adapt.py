"""Adapt a trained model to new images without their labels: `python -m digits.adapt
ckpt_path=<checkpoint or run directory> data=<option>` (or `digits-adapt`).

`adaptation=self_training` (the default: confident pseudo-labels, weak and strong views) or
`adaptation=adabn` (batch-norm statistics re-estimated). A new run directory like a training
run's: its manifest and every checkpoint record the model it came from and the method; metrics.json
holds the target test accuracy before and after, with the paired test between them
(digits.adaptation.run).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import MISSING, DictConfig

import digits.adaptation.settings
import digits.data.options
import digits.training.settings  # noqa: F401  (the schemas conf/adapt.yaml's groups extend)
from digits.adaptation.methods import batch_norm_layers
from digits.adaptation.run import PROGRAM, adapt, adapted_parent, method_of
from digits.cli import silence_known_warnings
from digits.config import config_dir
from digits.config.command_line import check_command_line
from digits.config.machine import check_writable
from digits.config.schema import setting, store_schemas
from digits.constraints import SEED
from digits.data.building import build_data
from digits.errors import DigitsError, reports_user_errors
from digits.models.checkpoint import digit_classifier_only, read_checkpoint
from digits.runs import RunDir, holding, manifest
from digits.runs.claim import release_claims
from digits.runs.lineage import parent_checkpoint
from digits.training.argv import check_dir_writable, pinned_run_dir
from digits.training.checks import check_loggers, check_provenance
from digits.training.settings import HParamsConfig


@dataclass
class AdaptConfig:
    ckpt_path: str = MISSING
    adaptation: Any = MISSING
    data: Any = MISSING
    optimizer: Any = MISSING
    trainer: Any = MISSING
    logger: Any = None
    callbacks: Any = None
    paths: Any = MISSING
    task_name: str = MISSING
    run_name: str = MISSING
    hparams: HParamsConfig = field(default_factory=HParamsConfig)
    seed: int | None = setting(SEED)
    overwrite: bool = MISSING


store_schemas(adapt=AdaptConfig)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="adapt")
@reports_user_errors
def hydra_main(cfg: DictConfig) -> None:
    """Adapt, in a run directory of its own that the manifest describes."""
    silence_known_warnings()
    run_dir = RunDir(Path(HydraConfig.get().runtime.output_dir))
    with (
        holding.owned(run_dir),
        manifest.recording(run_dir, cfg, PROGRAM, parent=adapted_parent(cfg)),
    ):
        adapt(cfg)


def check_adapt(cfg: DictConfig) -> None:
    """A digits checkpoint to adapt, a method it can take, target images to adapt on and a
    writable folder, before any run directory exists."""
    checkpoint = read_checkpoint(parent_checkpoint(cfg.ckpt_path, "ckpt_path"))
    digit_classifier_only(checkpoint, "digits.adapt", "adapting a number reader is not built")
    method = method_of(cfg)
    network = instantiate(checkpoint["hyper_parameters"]["net"], _convert_="all")
    if method == "adabn" and not batch_norm_layers(network):
        kind = type(network).__name__
        raise DigitsError(
            f"adaptation=adabn: the model of ckpt_path={cfg.ckpt_path} ({kind}) has no "
            "batch-norm layer, whose statistics AdaBN re-estimates; use adaptation=self_training, "
            "or a model trained with batch norm (model=lenet model.batch_norm=true)"
        )
    check_loggers(cfg)
    datamodule = build_data(cfg.data)
    check_provenance(cfg.data)
    datamodule.prepare_data()
    if datamodule.training_images() == 0:
        raise DigitsError(f"data={cfg.data['_target_']}: no training images to adapt on")
    check_writable(cfg.paths.log_dir)


def main() -> None:
    """`python -m digits.adapt`: check the command line, hold the run directory, then run."""
    args = sys.argv[1:]
    reports_user_errors(check_dir_writable)(args)
    composed = reports_user_errors(check_command_line)("adapt", args, check_adapt)
    sys.argv[1:] = pinned_run_dir(composed, args)
    try:
        hydra_main()
    finally:
        release_claims()


if __name__ == "__main__":
    main()
