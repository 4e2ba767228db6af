"""Checking what the user asked for before anything heavy starts.

`check_command_line` composes the config from the command line exactly as Hydra will (every value of
a `-m` sweep too) and turns the first mistake into one DigitsError line naming the key, the value and
what is allowed (digits.config.validate, from the schema). What depends on this machine (a GPU, a
checkpoint, a writable folder) is checked here.
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

from digits.config import config_dir
from digits.config.schema import MOVED
from digits.config.validate import check_schema, composition_error
from digits.errors import DigitsError

HYDRA_FLAGS = ("-h", "--help", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version")
MAX_SWEEP_CHECKS = 50


def group_options(group: str) -> list[str]:
    return sorted(path.stem for path in (Path(config_dir()) / group).glob("*.yaml"))


# --- the command line -----------------------------------------------------------------------


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


def _check_moved(overrides: list[Override]) -> None:
    for override in overrides:
        key = override.key_or_group.lstrip("+~")
        if key in MOVED:
            line = override.input_line.lstrip("+~")
            raise DigitsError(f"{line}: moved to {MOVED[key]}; use {MOVED[key]}{line[len(key) :]}")


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
    config_name: str, args: Sequence[str], check: Callable[[DictConfig], None] | None
) -> None:
    """Compose `config_name` with the user's overrides as Hydra will; raise DigitsError (one line)
    for the first mistake found. `check` adds what only that entry point knows."""
    if any(arg in HYDRA_FLAGS or arg.startswith("--") for arg in args):
        return
    args = [a for a in args if a not in ("-m", "--multirun")]
    overrides = [o for o in _parse(args) if not o.key_or_group.startswith("hydra")]
    _check_moved(overrides)
    _check_group_choices(overrides)
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):

        def recompose(combo: list[str]) -> DictConfig:
            return compose(config_name, overrides=combo)

        for combo in _expand_sweeps(overrides):
            try:
                cfg = recompose(combo)
            except ConfigCompositionException as error:
                raise composition_error(error, combo, recompose) from error
            except OmegaConfBaseException as error:
                raise DigitsError(str(error).splitlines()[0]) from error
            check_schema(cfg, combo)
            check_devices(cfg)
            if check is not None:
                check(cfg)


# --- this machine ---------------------------------------------------------------------------


def check_devices(cfg: DictConfig) -> None:
    """A GPU asked for must be there."""
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise DigitsError(
            f"trainer.accelerator={accelerator}: no CUDA GPU is visible on this machine; "
            "run on the CPU with trainer=cpu (or trainer.accelerator=cpu)"
        )


def check_train(cfg: DictConfig) -> None:
    """What a training run needs beyond its schema: a checkpoint that fits and leaves something to
    train, a writable folder."""
    if cfg.get("ckpt_path"):
        from digits.models.checkpoint import read_checkpoint  # heavy import, only when resuming

        checkpoint = read_checkpoint(cfg.ckpt_path)
        check_checkpoint_fits(cfg.ckpt_path, checkpoint["hyper_parameters"]["net"], cfg.model)
        check_work_left(checkpoint, cfg)
    check_writable(Path(cfg.paths.log_dir))


def check_work_left(checkpoint: dict[str, Any], cfg: DictConfig) -> None:
    """Resuming a run that has already trained as far as asked would change nothing but its files."""
    epochs = checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]
    max_epochs, max_steps = cfg.trainer.max_epochs, cfg.trainer.max_steps
    epochs_done = max_epochs is not None and epochs >= max_epochs
    steps_done = max_steps not in (None, -1) and checkpoint["global_step"] >= max_steps
    if not (epochs_done or steps_done) or not cfg.train:
        return
    given = f"resume={cfg.resume}" if cfg.get("resume") else f"ckpt_path={cfg.ckpt_path}"
    limit = f"trainer.max_epochs={max_epochs}" if epochs_done else f"trainer.max_steps={max_steps}"
    raise DigitsError(
        f"{given}: the run has already trained {epochs} epoch{'s' * (epochs != 1)} "
        f"({checkpoint['global_step']} steps) "
        f"and {limit} asks for no more; nothing changed. To train longer, raise {limit.split('=')[0]}"
    )


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


def check_checkpoint_fits(ckpt_path: str, trained: dict[str, Any], model: DictConfig) -> None:
    """The checkpoint's network (`trained`) must be the selected one."""
    architecture = OmegaConf.to_container(model, resolve=True)
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
