"""Checking what the user asked for before anything heavy starts.

`check_command_line` composes the config from the command line exactly as Hydra will (every value of
a `-m` sweep too) and turns the first mistake into one DigitsError line naming the key, the value and
what is allowed. Types, unknown keys, ranges and choices all come from `digits.config.schema`; what
depends on this machine (a GPU, a checkpoint, a writable folder) is checked here too.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import ConfigCompositionException, HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException, ValidationError

from digits.config import config_dir
from digits.config.schema import MOVED, Nested, OneOf
from digits.errors import DigitsError

HYDRA_FLAGS = ("-h", "--help", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version")
MAX_SWEEP_CHECKS = 50
TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def group_options(group: str) -> list[str]:
    return sorted(path.stem for path in (Path(config_dir()) / group).glob("*.yaml"))


# --- what the schema says about a field -----------------------------------------------------


def describe(schema_field: dataclasses.Field) -> str:
    """What a field takes, in words: 'an integer >= 1', 'a list of numbers > 0 (or null)'."""
    kind = schema_field.type
    nullable = False
    if isinstance(kind, types.UnionType) and type(None) in kind.__args__:
        nullable = True
        kind = next(arg for arg in kind.__args__ if arg is not type(None))
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        words = (
            f"a list of {TYPE_WORDS.get(item, 'values').removeprefix('an ').removeprefix('a ')}s"
        )
    else:
        words = TYPE_WORDS.get(kind, "a value")
    allowed = schema_field.metadata.get("allowed")
    if allowed is not None:
        words = allowed.describe() if words == "a string" else f"{words} {allowed.describe()}"
    return f"{words} (or null)" if nullable else words


def schema_fields(node: DictConfig) -> dict[str, dataclasses.Field] | None:
    """The schema's fields of a composed config node, or None for a node without a schema."""
    schema = OmegaConf.get_type(node)
    if schema is None or not dataclasses.is_dataclass(schema):
        return None
    return {f.name: f for f in dataclasses.fields(schema)}


def _nodes(node: DictConfig, prefix: str = "") -> Iterator[tuple[str, DictConfig]]:
    yield prefix, node
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            yield from _nodes(child, f"{prefix}{key}.")


# --- messages -------------------------------------------------------------------------------


def shown(key: str, value: Any, combo: Sequence[str]) -> str:
    """`key=value` as the user typed it, when the command line set it."""
    typed = next((o for o in combo if o.split("=", 1)[0].lstrip("+~") == key), None)
    if typed is not None:
        return typed.lstrip("+~")
    if value is None:
        value = "null"
    return f"{key}={value}"


def check_schema(cfg: DictConfig, combo: Sequence[str]) -> None:
    """Required values, unknown keys, ranges and choices of every node that has a schema."""
    for prefix, node in _nodes(cfg):
        fields = schema_fields(node)
        if fields is not None:
            check_node(node, fields, prefix, combo)


def check_node(
    node: DictConfig, fields: dict[str, dataclasses.Field], prefix: str, combo: Sequence[str]
) -> None:
    """One node against its schema's fields."""
    extra_keys = getattr(OmegaConf.get_type(node), "EXTRA_KEYS", "")
    for key in node:
        if key not in fields and not extra_keys:
            raise unknown_key(f"{prefix}{key}", shown(f"{prefix}{key}", node[key], combo), fields)
    for name, schema_field in fields.items():
        key = f"{prefix}{name}"
        if OmegaConf.is_missing(node, name):
            raise DigitsError(f"{key}: required, must be {describe(schema_field)}")
        allowed = schema_field.metadata.get("allowed")
        value = node[name] if allowed is not None else None
        if value is None:
            continue
        if isinstance(allowed, Nested):
            check_nested(value, allowed.schema, f"{key}.", combo)
        elif not allowed.admits(
            OmegaConf.to_object(value) if OmegaConf.is_config(value) else value
        ):
            problem = "use" if isinstance(allowed, OneOf) else "out of range, must be"
            raise DigitsError(f"{shown(key, value, combo)}: {problem} {allowed.describe()}")


def check_nested(value: Any, schema: type, prefix: str, combo: Sequence[str]) -> None:
    key = prefix.rstrip(".")
    if not OmegaConf.is_dict(value):
        raise DigitsError(f"{shown(key, value, combo)}: must be {Nested(schema).describe()}")
    fields = {f.name: f for f in dataclasses.fields(schema)}
    try:
        node = OmegaConf.merge(OmegaConf.structured(schema), value)
    except OmegaConfBaseException as error:
        name = str(getattr(error, "full_key", "") or "").split("[", 1)[0]
        if name in fields and isinstance(error, ValidationError):
            raise DigitsError(
                f"{shown(key, value, combo)}: {prefix}{name} must be {describe(fields[name])}"
            ) from error
        raise unknown_key(f"{prefix}{name}", shown(key, value, combo), fields) from error
    check_node(node, fields, prefix, combo)


def unknown_key(
    key: str, typed: str, fields: dict[str, dataclasses.Field] | None, extra: str = ""
) -> DigitsError:
    """No such key: say which keys there are, or how to pass another argument through."""
    known = [name for name in fields or {} if not name.startswith("_")]
    where = key.rsplit(".", 1)[0] if "." in key else "the top level"
    if extra:
        hint = f"to pass {extra}, use +{typed.lstrip('+')}"
    elif known:
        hint = f"{where} takes: {', '.join(known)}"
    else:
        hint = "see `--cfg job` for the keys"
    return DigitsError(f"{typed}: no such key in the config ({hint})")


def _parent(cfg: DictConfig, key: str) -> DictConfig | None:
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return node if isinstance(node, DictConfig) else None


def composition_error(
    error: ConfigCompositionException,
    combo: list[str],
    recompose: Callable[[list[str]], DictConfig],
) -> DigitsError:
    """One line for a failed composition: a wrong type or an unknown key, said with the schema
    of the node the key is in (found by composing without the offending override)."""
    cause = error.__cause__
    key = (getattr(cause, "full_key", None) or "").split("[", 1)[0]  # a list element: the list
    without = [o for o in combo if o.split("=", 1)[0].lstrip("+~") != key]
    parent = None
    if key and without != combo:
        try:
            parent = _parent(recompose(without), key)
        except (ConfigCompositionException, OmegaConfBaseException):
            parent = None
    fields = schema_fields(parent) if parent is not None else None
    name = key.rsplit(".", 1)[-1]
    typed = shown(key, getattr(cause, "value", None), combo)
    if isinstance(cause, ValidationError) and key:
        what = describe(fields[name]) if fields and name in fields else "another type"
        return DigitsError(f"{typed}: must be {what}")
    if str(error).startswith("Could not override") and key:
        extra = getattr(OmegaConf.get_type(parent), "EXTRA_KEYS", "") if parent is not None else ""
        return unknown_key(key, typed, fields, extra)
    return DigitsError(" ".join(str(error).split()))


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
    """What a training run needs beyond its schema: a checkpoint that fits, a writable folder."""
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
    from digits.models.checkpoint import read_checkpoint  # heavy import, only when resuming

    trained = read_checkpoint(ckpt_path)["hyper_parameters"]["net"]
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
