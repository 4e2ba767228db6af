"""Checking what the user asked for before anything heavy starts.

`check_command_line` composes the config from the command line exactly as Hydra will (every value of
a `-m` sweep too) and turns a mistake (unknown group option or key, wrong type, value out of range,
a GPU that is not there, a checkpoint that does not fit) into one DigitsError line.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import ConfigCompositionException, HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from digits import config_dir
from digits.errors import DigitsError

HYDRA_FLAGS = ("-h", "--help", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version")
MAX_SWEEP_CHECKS = 50


def group_options(group: str) -> list[str]:
    return sorted(path.stem for path in (Path(config_dir()) / group).glob("*.yaml"))


def _number(
    cfg: DictConfig, key: str, kind: type, allowed: str, check: Callable[[Any], bool]
) -> None:
    value = OmegaConf.select(cfg, key, throw_on_missing=False)
    if value is None:
        return
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int and not (isinstance(value, int) and not isinstance(value, bool)):
        raise DigitsError(f"{key}={value}: must be an integer {allowed}")
    if kind is float and not numeric:
        raise DigitsError(f"{key}={value}: must be a number {allowed}")
    if not check(value):
        raise DigitsError(f"{key}={value}: out of range, must be {allowed}")


def validate_train(cfg: DictConfig) -> None:
    """Types and ranges of the values a training run depends on."""
    _number(cfg, "data.batch_size", int, ">= 1", lambda v: v >= 1)
    _number(
        cfg,
        "data.val_size",
        int,
        "in 1..59999 (taken from the 60,000 training images)",
        lambda v: 1 <= v < 60_000,
    )
    _number(cfg, "data.num_workers", int, ">= 0", lambda v: v >= 0)
    _number(cfg, "data.std", float, "> 0", lambda v: v > 0)
    _number(cfg, "data.mean", float, "(any number)", lambda v: True)
    _number(cfg, "optimizer.lr", float, "> 0", lambda v: v > 0)
    _number(cfg, "optimizer.momentum", float, "in [0, 1)", lambda v: 0 <= v < 1)
    _number(cfg, "optimizer.weight_decay", float, ">= 0", lambda v: v >= 0)
    for key in ("model.dropout", "model.conv_dropout"):
        _number(cfg, key, float, "in [0, 1)", lambda v: 0 <= v < 1)
    _number(cfg, "label_smoothing", float, "in [0, 1)", lambda v: 0 <= v < 1)
    _number(cfg, "trainer.max_epochs", int, ">= 1", lambda v: v >= 1)
    _number(cfg, "seed", int, "(or null)", lambda v: True)
    hidden = OmegaConf.select(cfg, "model.hidden")
    sizes = hidden if OmegaConf.is_list(hidden) else [hidden] if hidden is not None else []
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes):
        raise DigitsError(f"model.hidden={hidden}: must be positive integers")
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise DigitsError(
            f"trainer.accelerator={accelerator}: no CUDA GPU is visible on this machine; "
            "run on the CPU with trainer=cpu (or trainer.accelerator=cpu)"
        )
    if cfg.get("ckpt_path"):
        check_checkpoint_fits(cfg.ckpt_path, cfg.model)
    check_writable(Path(cfg.paths.log_dir))


def check_writable(folder: Path) -> None:
    """Fail now, not after an hour of training, if runs cannot be written under `folder`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        raise DigitsError(
            f"paths.log_dir={folder}: cannot write there ({error.strerror}); choose a writable "
            "folder with paths.log_dir=... or DIGITS_OUTPUT_DIR"
        ) from error


def check_checkpoint_fits(ckpt_path: str, model: DictConfig) -> None:
    """The checkpoint must exist, be a digits checkpoint, and hold the selected network."""
    from digits.checkpoints import read_checkpoint  # heavy import, only when resuming

    saved = read_checkpoint(ckpt_path)["hyper_parameters"]["net"]
    architecture = OmegaConf.to_container(model, resolve=True)
    trained = saved
    if architecture == trained:
        return
    if architecture["_target_"] != trained["_target_"]:
        name = trained["_target_"].rsplit(".", 1)[-1]
        raise DigitsError(
            f"ckpt_path={ckpt_path}: holds a {name} network, not the selected "
            f"{architecture['_target_'].rsplit('.', 1)[-1]}; select the model it was trained with"
        )
    differences = ", ".join(
        f"model.{key}={trained.get(key)} in the checkpoint, {architecture.get(key)} selected"
        for key in sorted(set(trained) | set(architecture))
        if trained.get(key) != architecture.get(key)
    )
    raise DigitsError(f"ckpt_path={ckpt_path}: network does not match: {differences}")


def _expand_sweeps(overrides: list[Override]) -> list[list[str]]:
    """Override lists to compose: the plain ones, plus each value of each choice sweep."""
    plain = [o.input_line for o in overrides if not o.is_sweep_override()]
    combos = [plain]
    for override in overrides:
        if override.is_sweep_override() and override.is_choice_sweep():
            key = override.get_key_element()
            for value in override.sweep_string_iterator():
                combos.append([*plain, f"{key}={value}"])
    return combos[:MAX_SWEEP_CHECKS]


def _parse(args: Sequence[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(list(args))
    except HydraException as error:
        raise DigitsError(str(error).splitlines()[0]) from error


def _check_group_choices(overrides: list[Override]) -> None:
    for override in overrides:
        group = override.key_or_group
        if override.is_delete() or "." in group or not (Path(config_dir()) / group).is_dir():
            continue
        values = (
            list(override.sweep_string_iterator())
            if override.is_sweep_override() and override.is_choice_sweep()
            else [override.value()]
        )
        options = group_options(group)
        for value in values:
            if value is not None and str(value) not in options:
                raise DigitsError(
                    f"{group}={value}: no such {group} option; available: {', '.join(options)}"
                )


def check_command_line(
    config_name: str, args: Sequence[str], validate: Callable[[DictConfig], None] | None
) -> None:
    """Compose `config_name` with the user's overrides as Hydra will; raise DigitsError (one line)
    for the first mistake found."""
    if any(arg in HYDRA_FLAGS or arg.startswith("--") for arg in args):
        return
    args = [a for a in args if a not in ("-m", "--multirun")]
    overrides = [o for o in _parse(args) if not o.key_or_group.startswith("hydra")]
    _check_group_choices(overrides)
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        for combo in _expand_sweeps(overrides):
            try:
                cfg = compose(config_name, overrides=combo)
            except ConfigCompositionException as error:
                raise DigitsError(_composition_message(error, combo)) from error
            except OmegaConfBaseException as error:
                raise DigitsError(str(error).splitlines()[0]) from error
            if validate is not None:
                validate(cfg)


def _composition_message(error: ConfigCompositionException, combo: list[str]) -> str:
    text = str(error)
    if text.startswith("Could not override"):
        key = text.split("'")[1]
        line = next((o for o in combo if o.split("=")[0].lstrip("+~") == key), key)
        return (
            f"{line}: no such key in the config (see `--cfg job` for the keys); "
            f"use +{line} to add a new one"
        )
    return " ".join(text.split())
