"""Transfer learning's start: a new run's network takes a trained model's weights (`init_from=`, a
checkpoint or a run directory) before it trains; the optimizer, schedule and epochs start fresh,
unlike `resume=`, which continues the same run. The parent is recorded (digits.runs.lineage)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from digits.errors import DigitsError
from digits.models.checkpoint import read_checkpoint
from digits.models.classifier import DigitClassifier
from digits.runs.lineage import parent_checkpoint, parent_record

log = logging.getLogger(__name__)


def parent_weights(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The network's weights as the parent was scored: its weight average where it kept one
    (module.ema_decay), else the trained weights; keyed as the network's own state_dict."""
    state = checkpoint["state_dict"]
    prefix = "ema.module." if any(key.startswith("ema.module.") for key in state) else "net."
    return {
        key.removeprefix(prefix): value for key, value in state.items() if key.startswith(prefix)
    }


def differing_layers(network: torch.nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
    """The network's tensors the parent's weights cannot fill: missing, extra or of other shape."""
    own = network.state_dict()
    missing = [f"{key} (not in the parent)" for key in own if key not in weights]
    extra = [f"{key} (only in the parent)" for key in weights if key not in own]
    shapes = [
        f"{key} {tuple(weights[key].shape)} -> {tuple(own[key].shape)}"
        for key in own
        if key in weights and weights[key].shape != own[key].shape
    ]
    return shapes + missing + extra


def check_init_from(cfg: DictConfig) -> None:
    """`init_from=` names a readable digits checkpoint whose network and input normalisation fit
    the selected ones (or, with init_strict=false, share some layers), and starts a new run."""
    given = cfg.init_from
    if cfg.ckpt_path and not cfg.resume:
        raise DigitsError(
            f"init_from={given} ckpt_path={cfg.ckpt_path}: give one (ckpt_path continues training "
            "from that checkpoint's state; init_from starts a new run from its weights)"
        )
    checkpoint = read_checkpoint(parent_checkpoint(given), key="init_from")
    trained = checkpoint["hyper_parameters"]
    for key in ("mean", "std"):
        if trained[key] != cfg.module[key]:
            raise DigitsError(
                f"init_from={given}: its network learned on images normalised with module.{key}="
                f"{trained[key]}, not {cfg.module[key]}; use the parent's (module.mean="
                f"{trained['mean']} module.std={trained['std']})"
            )
    network = instantiate(cfg.model, _convert_="all")  # as DigitClassifier builds its own
    differ = differing_layers(network, parent_weights(checkpoint))
    if cfg.init_strict and differ:
        parent, selected = (
            str(t).rsplit(".", 1)[-1] for t in (trained["net"]["_target_"], cfg.model["_target_"])
        )
        what = (
            f"holds a {parent} network, not the selected {selected}"
            if parent != selected
            else f"its {parent} network does not fit the selected one"
        )
        raise DigitsError(
            f"init_from={given}: {what}: {', '.join(differ[:4])}"
            f"{' ...' if len(differ) > 4 else ''} (select the parent's model and sizes, or load "
            "the layers that fit with init_strict=false)"
        )
    if len(differ) == len(network.state_dict()):
        raise DigitsError(f"init_from={given}: no layer of its network fits the selected one")


def start_from_parent(model: DigitClassifier, cfg: DictConfig) -> dict[str, Any]:
    """Load the parent's weights into `model`'s network (the layers that fit, with init_strict=
    false) and remember the parent in it (saved in each checkpoint); returns the parent's record."""
    record = parent_record(cfg.init_from)
    weights = parent_weights(read_checkpoint(record["checkpoint"], key="init_from"))
    own = model.net.state_dict()
    fitting = {k: v for k, v in weights.items() if k in own and v.shape == own[k].shape}
    model.net.load_state_dict(fitting, strict=cfg.init_strict)
    if model.ema is not None:  # the average starts from the parent's weights too
        model.ema.module.load_state_dict(model.net.state_dict())
    left = sorted(set(own) - set(fitting))
    if left:
        log.info("init_from: %d tensors not loaded (fresh weights): %s", len(left), ", ".join(left))
    record |= {"loaded": len(fitting), "not_loaded": left}
    model.parent = record
    return record
