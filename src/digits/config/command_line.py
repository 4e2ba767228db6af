"""The command line, checked before anything heavy starts.

`check_command_line` composes the config from the command line exactly as Hydra will (every value of
a `-m` sweep too) and turns the first mistake into one DigitsError line naming the key, the value and
what is allowed (digits.config.validate, from the schema); then what the config asks of this machine
(digits.config.machine).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.types import Glob, Override
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from digits.config import EXTRA_CONFIG_DIRS, config_dir, group_options
from digits.config.extras import EXTRA_LAUNCHERS, require_extra
from digits.config.hydra_flags import hydra_flags, parse_overrides, quoted
from digits.config.machine import check_devices, check_trainer
from digits.config.validate import (
    check_schema,
    check_targets,
    composition_error,
    schema_fields,
    schema_nodes,
    unknown_key,
)
from digits.errors import DigitsError

# A sweep's values are checked up front: the first MAX_SWEEP_CHECKS composed and checked in full
# (the command's own checks too, ~0.3 s each), every other value against the schema, set on the
# first composed config (a few ms each; group choices are checked by name already).
MAX_SWEEP_CHECKS = 50
SweeperCheck = Callable[[DictConfig, list[str], Callable[[list[str]], DictConfig]], None]
# Hydra flags that show something instead of running, or pick other configs: left to Hydra.
HYDRA_OWN_WORK = (
    "help", "hydra_help", "version", "cfg", "info", "shell_completion",
    "config_path", "config_name", "experimental_rerun",
)  # fmt: skip


def _expand_sweeps(overrides: list[Override]) -> list[list[str]]:
    """Override lists to compose, each a job the sweep can run: the plain ones (unless every sweep
    lists its values, choice or range: then no job runs with a swept key at its default); then
    jobs that together take every value of every listed sweep (value i of each, so that the first
    checks reach every sweep and settings that depend on each other are checked together); then
    the other jobs of the sweeps' product while the full checks last."""
    plain = [o.input_line for o in overrides if not o.is_sweep_override()]
    sweeps = [o for o in overrides if o.is_sweep_override()]
    listed = [o for o in sweeps if o.is_choice_sweep() or o.is_range_sweep()]
    combos = [] if sweeps and len(listed) == len(sweeps) else [plain]
    values = [[f"{o.get_key_element()}={value}" for value in _swept_values(o)] for o in listed]
    if not values:
        return combos
    longest = max(len(v) for v in values)
    covering = [tuple(v[i % len(v)] for v in values) for i in range(longest)]
    seen = set(covering)
    others = (job for job in itertools.product(*values) if job not in seen)
    more = itertools.islice(others, max(0, MAX_SWEEP_CHECKS - len(covering)))
    return combos + [[*plain, *job] for job in [*covering, *more]]


def _swept_values(override: Override) -> list[Any]:
    """The values of a choice or range sweep; glob(...) matches the options of the group it sweeps (Hydra
    lists them only once it runs)."""
    value = override.value()
    if not isinstance(value, Glob):
        return list(override.sweep_string_iterator())
    options = group_options(override.key_or_group)
    if not options:
        raise DigitsError(
            f"{override.input_line}: glob() picks options of a config group; "
            f"{override.key_or_group} is no group"
        )
    return value.filter(options)


def _overrides_and_flags(args: Sequence[str]) -> tuple[list[str], argparse.Namespace]:
    """Split the command line as Hydra's argument parser does; refuse flags it does not know
    (argparse would print its usage and several lines)."""
    flags, unknown = hydra_flags().parse_known_args(list(args))
    for arg in unknown:
        if arg.startswith("-"):
            raise DigitsError(
                f"{arg}: not an option; settings are key=value (e.g. model=cnn), flags are "
                "Hydra's: -m (a sweep), --cfg job (show the config), --help"
            )
    return flags.overrides, flags


def _check_hydra_sweeps(parsed: list[Override]) -> None:
    """Hydra refuses to sweep its own keys: a search dimension is given by the key it searches."""
    for override in parsed:
        if override.key_or_group.startswith("hydra.") and override.is_sweep_override():
            key, value = override.key_or_group, override.input_line.split("=", 1)[1]
            dimension = f"{key.removeprefix('hydra.sweeper.params.')}={value}"
            raise DigitsError(
                f"{override.input_line}: Hydra does not sweep its own keys; give the dimension "
                f"as {dimension}"
            )


def _check_moved(overrides: list[Override], base: DictConfig) -> None:
    """A setting that has moved (its command's schema says where: `MOVED`) gets a pointer."""
    moved = getattr(OmegaConf.get_type(base), "MOVED", {})
    for override in overrides:
        key = override.key_or_group.lstrip("+~")
        if key in moved:
            line = override.input_line.lstrip("+~")
            raise DigitsError(f"{line}: moved to {moved[key]}; use {moved[key]}{line[len(key) :]}")


def _check_group_choices(overrides: list[Override], base: DictConfig) -> None:
    """Each `group=option` must name an option of a group this entry point has (`base`: its config
    composed without overrides, with Hydra's node)."""
    groups = base.hydra.runtime.choices
    for override in overrides:
        group = override.key_or_group
        if override.is_delete() or "." in group or not (Path(config_dir()) / group).is_dir():
            continue
        fields = schema_fields(base) or {}
        if group not in groups and not (override.is_add() and group in fields):
            raise unknown_key(group, override.input_line.lstrip("+"), fields)
        values = (
            _swept_values(override)
            if override.is_sweep_override() and override.is_choice_sweep()
            else [override.value()]
        )
        options = group_options(group)
        for value in values:
            if value is None or str(value) not in options:
                shown = "null" if value is None else value
                raise DigitsError(
                    f"{group}={shown}: no such {group} option; available: {', '.join(options)}"
                )


def _check_launcher_installed(parsed: list[Override]) -> None:
    """A Hydra launcher from an optional extra (hydra/launcher=slurm) needs that extra."""
    for override in parsed:
        if override.key_or_group == "hydra/launcher" and not override.is_delete():
            extra = EXTRA_LAUNCHERS.get(str(override.value()))
            if extra:
                require_extra(extra, override.input_line)


def _check_config_name(flags: argparse.Namespace) -> None:
    """--config-name names a YAML file of the config folder (or of --config-dir)."""
    if flags.config_name is None or flags.config_path is not None:
        return
    folders = [Path(config_dir()), *([Path(flags.config_dir)] if flags.config_dir else [])]
    name = flags.config_name.removesuffix(".yaml")
    if not any((folder / f"{name}.yaml").is_file() for folder in folders):
        raise DigitsError(
            f"--config-name {flags.config_name}: no {name}.yaml in "
            f"{' or '.join(str(f) for f in folders)}; give the name of a config there"
        )


def check_command_line(
    config_name: str,
    args: Sequence[str],
    check: Callable[[DictConfig], None] | None,
    check_sweeper: SweeperCheck | None = None,
    prepare: Callable[[DictConfig], None] | None = None,
) -> DictConfig | None:
    """Compose `config_name` with the user's overrides as Hydra will; raise DigitsError (one line)
    for the first mistake found. `prepare` does to each composed config what the entry point's
    Hydra main does first (before anything is checked); `check` adds what only that entry point
    knows of each composed config; `check_sweeper` what it knows of a multirun's sweeper (Hydra's
    node, the overrides as typed, and a function composing other overrides). Returns the config
    composed with Hydra's node (for a sweep, its first job's), or None where Hydra only shows
    something (--help, --cfg)."""
    args, flags = _overrides_and_flags(args)
    if flags.config_dir is not None and not Path(flags.config_dir).is_dir():
        raise DigitsError(
            f"--config-dir {flags.config_dir}: no such folder; give a folder of configs"
        )
    parse_overrides(args)  # one line for a malformed override, whoever composes the config
    _check_config_name(flags)
    if any(getattr(flags, name) for name in HYDRA_OWN_WORK):
        return None
    added = (Path(flags.config_dir).resolve(),) if flags.config_dir else ()
    token = EXTRA_CONFIG_DIRS.set(added)
    try:
        return _check_composed(config_name, args, flags, check, check_sweeper, prepare)
    finally:
        EXTRA_CONFIG_DIRS.reset(token)


def searched() -> list[str]:
    """The override that adds a --config-dir to Hydra's search path, as the flag does."""
    added = EXTRA_CONFIG_DIRS.get()
    folders = ", ".join(quoted(f"file://{folder}") for folder in added)
    return [f"hydra.searchpath=[{folders}]"] if added else []


def _check_composed(
    config_name: str,
    args: list[str],
    flags: argparse.Namespace,
    check: Callable[[DictConfig], None] | None,
    check_sweeper: SweeperCheck | None,
    prepare: Callable[[DictConfig], None] | None,
) -> DictConfig:
    parsed = parse_overrides(args)
    _check_launcher_installed(parsed)
    overrides = [o for o in parsed if not o.key_or_group.startswith("hydra")]
    _check_hydra_sweeps(parsed)
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        base = compose(config_name, overrides=searched(), return_hydra_config=True)
        _check_moved(overrides, base)
        _check_group_choices(overrides, base)

        def recompose(combo: list[str]) -> DictConfig:
            return compose(config_name, overrides=[*combo, *searched()])

        combos = _expand_sweeps(overrides)
        configs = []
        for combo in combos[:MAX_SWEEP_CHECKS]:
            cfg = compose_checked(combo, recompose)
            if prepare is not None:
                prepare(cfg)
            with settings_named():
                check_schema(cfg, combo)
                check_targets(cfg)
                check_not_ignored(cfg, combo)
                if check is not None:
                    check(cfg)
            configs.append(cfg)
        plain = {o.input_line for o in overrides if not o.is_sweep_override()}
        for combo in combos[MAX_SWEEP_CHECKS:]:
            cfg = copy.deepcopy(configs[0])
            with settings_named():
                for key, value in (line.split("=", 1) for line in combo if line not in plain):
                    if not group_options(key):
                        OmegaConf.update(cfg, key, value, merge=True)
                check_schema(cfg, combo)
        composed = _with_hydra_node(config_name, combos[0], parsed)
        hydra = composed.hydra
        if flags.multirun:
            with open_dict(hydra):
                hydra.mode = RunMode.MULTIRUN
        _check_sweeps_need_multirun(overrides, composed)
        if is_multirun(composed) and check_sweeper is not None:
            check_sweeper(hydra, [o.input_line for o in overrides], recompose)
    if hydra.runtime.choices.get("hydra/launcher", "basic") == "basic":  # runs on this machine
        for cfg in configs:
            check_devices(cfg)
            check_trainer(cfg)
    return composed


def check_not_ignored(cfg: DictConfig, combo: list[str]) -> None:
    """A setting given on the command line must take effect: none that another one, set, makes
    unused (a schema's `UNUSED_WITH`: {setting: (the other, why)})."""
    given = {o.key_or_group.lstrip("+~") for o in parse_overrides(combo)}
    for prefix, node, _ in schema_nodes(cfg):
        for key, (other, why) in getattr(OmegaConf.get_type(node), "UNUSED_WITH", {}).items():
            value = node.get(other)
            if f"{prefix}{key}" in given and value is not None:
                raise DigitsError(
                    f"{prefix}{key}={node[key]} is unused with {prefix}{other}={value} ({why}); "
                    "give one of them"
                )


@contextlib.contextmanager
def settings_named() -> Iterator[None]:
    """OmegaConf's errors while checking a composed config (a setting removed with ~key, an
    interpolation that cannot resolve) said in one line naming the setting."""
    try:
        yield
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DigitsError(f"{key}: {reason}" if key else reason) from error


def _check_sweeps_need_multirun(overrides: list[Override], composed: DictConfig) -> None:
    """A sweep (a,b) in a single run: Hydra would stop with several lines; say it in one."""
    if is_multirun(composed):
        return
    for override in overrides:
        if override.is_sweep_override():
            raise DigitsError(
                f"{override.input_line}: several values, for a sweep; add -m to run a job per "
                f"value, or give one value (a list is [a,b]; a string with a comma is quoted)"
            )


def is_multirun(composed: DictConfig) -> bool:
    """Whether a config composed by check_command_line runs as a multirun (-m, or hydra.mode)."""
    return OmegaConf.select(composed, "hydra.mode") == RunMode.MULTIRUN


def _with_hydra_node(config_name: str, combo: list[str], parsed: list[Override]) -> DictConfig:
    """The config with Hydra's own node as the command line sets it (launcher, sweeper, run
    directory)."""
    own = [
        o.input_line
        for o in parsed
        if o.key_or_group.startswith("hydra") and not o.is_sweep_override()
    ]
    try:
        return compose(config_name, overrides=[*combo, *own, *searched()], return_hydra_config=True)
    except (ConfigCompositionException, OmegaConfBaseException) as error:
        for line in own:  # name the override Hydra refused
            try:
                compose(config_name, overrides=[*combo, line, *searched()],
                        return_hydra_config=True)  # fmt: skip
            except (ConfigCompositionException, OmegaConfBaseException):
                raise DigitsError(
                    f"{line}: Hydra's config has no such key or option (see --cfg hydra)"
                ) from error
        raise DigitsError(" ".join(str(error).split())) from error


def compose_checked(combo: list[str], recompose: Callable[[list[str]], DictConfig]) -> DictConfig:
    """`recompose(combo)`, a failed composition said in one line naming the override."""
    try:
        return recompose(combo)
    except ConfigCompositionException as error:
        raise composition_error(error, combo, recompose) from error
    except OmegaConfBaseException as error:
        raise DigitsError(str(error).splitlines()[0]) from error
    except yaml.YAMLError as error:  # a config file of a --config-dir, say (it names the file)
        raise DigitsError(f"not valid YAML: {' '.join(str(error).split())}") from error


def check_run_or_checkpoint(cfg: DictConfig, verb: str) -> None:
    """Exactly one of `run=` (a folder) and `ckpt_path=` (a file)."""
    if not cfg.run and not cfg.ckpt_path:
        raise DigitsError("give run=<run or multirun directory> or ckpt_path=<checkpoint file>")
    if cfg.run and cfg.ckpt_path:
        raise DigitsError(
            f"run={cfg.run} ckpt_path={cfg.ckpt_path}: give one of them, not both (ckpt_path= "
            f"{verb} that file, run= the run's checkpoint=best or last)"
        )
    if cfg.run and Path(cfg.run).is_file():
        raise DigitsError(
            f"run={cfg.run}: a file, not a run directory (for a checkpoint file use ckpt_path=)"
        )
