"""Checking what the user asked for before anything heavy starts.

`check_command_line` composes the config from the command line exactly as Hydra will (every value of
a `-m` sweep too) and turns the first mistake into one DigitsError line naming the key, the value and
what is allowed (digits.config.validate, from the schema). What depends on this machine (a GPU, a
checkpoint, a writable folder) is checked here.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import math
import os
import socket
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, Override
from hydra.errors import ConfigCompositionException, HydraException, InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from digits.config import config_dir, group_options
from digits.config.schema import MOVED
from digits.config.validate import (
    check_schema,
    check_targets,
    composition_error,
    schema_fields,
    unknown_key,
)
from digits.errors import DigitsError
from digits.exported import EXPORT_SUFFIXES
from digits.exported.onnx_model import is_onnx
from digits.runs.run_dir import RunDir

MAX_SWEEP_CHECKS = 50
# Hydra flags that show something instead of running, or pick other configs: left to Hydra.
HYDRA_OWN_WORK = (
    "help", "hydra_help", "cfg", "info", "shell_completion",
    "config_path", "config_name", "config_dir", "experimental_rerun",
)  # fmt: skip


# --- the command line -----------------------------------------------------------------------


def _expand_sweeps(overrides: list[Override]) -> list[list[str]]:
    """Override lists to compose: the plain ones (unless every sweep is a choice sweep: then no job
    runs with a swept key at its default), plus each value of each choice sweep."""
    plain = [o.input_line for o in overrides if not o.is_sweep_override()]
    sweeps = [o for o in overrides if o.is_sweep_override()]
    choices_only = bool(sweeps) and all(o.is_choice_sweep() for o in sweeps)
    combos = [] if choices_only else [plain]
    for override in overrides:
        if override.is_sweep_override() and override.is_choice_sweep():
            key = override.get_key_element()
            for value in _swept_values(override):
                combos.append([*plain, f"{key}={value}"])
    return combos[:MAX_SWEEP_CHECKS]


def _swept_values(override: Override) -> list[Any]:
    """The values of a choice sweep; glob(...) matches the options of the group it sweeps (Hydra
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
    """Split the command line as Hydra's own argument parser does; refuse flags it does not know
    (argparse would print its usage and several lines)."""
    flags, unknown = get_args_parser().parse_known_args(list(args))
    for arg in unknown:
        if arg.startswith("-"):
            raise DigitsError(
                f"{arg}: not an option; settings are key=value (e.g. model=cnn), flags are "
                "Hydra's: -m (a sweep), --cfg job (show the config), --help"
            )
    return flags.overrides, flags


def _parse(args: Sequence[str]) -> list[Override]:
    """Hydra's parse of each override; a malformed one is named with the grammar's complaint."""
    parser = OverridesParser.create()
    overrides = []
    for arg in args:
        try:
            overrides += parser.parse_overrides([arg])
        except HydraException as error:
            lines = str(error).splitlines()
            reason = (
                lines[1] if lines[0].startswith("Error parsing") and len(lines) > 1 else lines[0]
            )
            raise DigitsError(
                f"{arg}: not a valid override ({reason.split(' expecting ')[0]}); write "
                "key=value, e.g. optimizer.lr=0.01, and quote values holding , [ ] { } = ~ or spaces"
            ) from error
    return overrides


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


def _check_moved(overrides: list[Override]) -> None:
    for override in overrides:
        key = override.key_or_group.lstrip("+~")
        if key in MOVED:
            line = override.input_line.lstrip("+~")
            raise DigitsError(f"{line}: moved to {MOVED[key]}; use {MOVED[key]}{line[len(key) :]}")


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


def check_command_line(
    config_name: str, args: Sequence[str], check: Callable[[DictConfig], None] | None
) -> DictConfig | None:
    """Compose `config_name` with the user's overrides as Hydra will; raise DigitsError (one line)
    for the first mistake found. `check` adds what only that entry point knows. Returns the config
    composed with Hydra's node (for a sweep, its first job's), or None where Hydra only shows
    something (--help, --cfg)."""
    args, flags = _overrides_and_flags(args)
    if any(getattr(flags, name) for name in HYDRA_OWN_WORK):
        return None
    parsed = _parse(args)
    overrides = [o for o in parsed if not o.key_or_group.startswith("hydra")]
    _check_hydra_sweeps(parsed)
    _check_moved(overrides)
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        _check_group_choices(overrides, compose(config_name, return_hydra_config=True))

        def recompose(combo: list[str]) -> DictConfig:
            return compose(config_name, overrides=combo)

        combos = _expand_sweeps(overrides)
        configs = []
        for combo in combos:
            cfg = _composed(combo, recompose)
            check_schema(cfg, combo)
            check_targets(cfg)
            if check is not None:
                check(cfg)
            configs.append(cfg)
        composed = _with_hydra_node(config_name, combos[0], parsed)
        hydra = composed.hydra
        if flags.multirun:
            with open_dict(hydra):
                hydra.mode = RunMode.MULTIRUN
        if is_multirun(composed):
            _check_sweeper(hydra, [o.input_line for o in overrides], recompose)
    if hydra.runtime.choices.get("hydra/launcher", "basic") == "basic":  # runs on this machine
        for cfg in configs:
            check_devices(cfg)
            check_trainer(cfg)
    return composed


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
        return compose(config_name, overrides=[*combo, *own], return_hydra_config=True)
    except (ConfigCompositionException, OmegaConfBaseException) as error:
        for line in own:  # name the override Hydra refused
            try:
                compose(config_name, overrides=[*combo, line], return_hydra_config=True)
            except (ConfigCompositionException, OmegaConfBaseException):
                raise DigitsError(
                    f"{line}: Hydra's config has no such key or option (see --cfg hydra)"
                ) from error
        raise DigitsError(" ".join(str(error).split())) from error


def _check_sweeper(
    hydra: DictConfig, task_overrides: list[str], recompose: Callable[[list[str]], DictConfig]
) -> None:
    """A search's counts, space, sampler and pruner, and every value of its space against the
    config it will be set in, before the study exists."""
    for key in ("n_trials", "n_jobs"):
        value = OmegaConf.select(hydra, f"sweeper.{key}")
        if value is not None and not (isinstance(value, int) and value >= 1):
            raise DigitsError(f"hydra.sweeper.{key}={value}: out of range, must be an integer >= 1")
    if hydra.runtime.choices.get("hydra/sweeper") == "optuna":
        from digits.search.sweeper import parse

        model = hydra.runtime.choices.get("model")
        space, _ = parse(hydra.sweeper, task_overrides, model)
        check_dimensions(space, model, recompose)


def check_dimensions(
    space: Any, model: str | None, recompose: Callable[[list[str]], DictConfig]
) -> None:
    """Each value a dimension can take (its choices, an interval's ends) composes and passes the
    schema, with the other dimensions at their first values."""
    candidates = {key: space.candidates(key) for key in space.distributions}
    first = {key: values[0] for key, values in candidates.items()}
    for key, values in candidates.items():
        for value in values:
            combo = space.overrides(first | {key: value})
            try:
                check_schema(_composed(combo, recompose), combo)
            except DigitsError as error:
                raise DigitsError(
                    f"search dimension {key} (model={model}): {error}; change the search "
                    "space (hydra.sweeper.params, or model_params for this model)"
                ) from error


def _composed(combo: list[str], recompose: Callable[[list[str]], DictConfig]) -> DictConfig:
    try:
        return recompose(combo)
    except ConfigCompositionException as error:
        raise composition_error(error, combo, recompose) from error
    except OmegaConfBaseException as error:
        raise DigitsError(str(error).splitlines()[0]) from error


# --- this machine ---------------------------------------------------------------------------


def check_devices(cfg: DictConfig) -> None:
    """A GPU asked for must be there, and no more devices than this machine has (on the CPU each
    device is a process: trainer.devices=99 would start 99 of them)."""
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator"))
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if gpu and not torch.cuda.is_available():
        raise DigitsError(
            f"trainer.accelerator={accelerator}: no CUDA GPU is visible on this machine; "
            "run on the CPU with trainer=cpu (or trainer.accelerator=cpu)"
        )
    check_nodes(cfg)
    devices = OmegaConf.select(cfg, "trainer.devices")
    if devices is None or devices in ("auto", -1, "-1"):
        return
    count = torch.cuda.device_count() if gpu else os.cpu_count() or 1
    kind = "CUDA GPU" if gpu else "CPU core"
    wanted = len(devices) if OmegaConf.is_list(devices) else devices
    if not isinstance(wanted, int) or isinstance(wanted, bool) or not 1 <= wanted <= count:
        raise DigitsError(
            f"trainer.devices={devices}: this machine has {count} {kind}{'s' * (count != 1)} "
            f"for accelerator={accelerator}; use 1..{count}, -1 (all) or auto"
        )


def check_trainer(cfg: DictConfig) -> None:
    """Lightning's own checks of the Trainer settings (accelerator, strategy, profiler, ...), run
    now by building a bare Trainer, not after the run directory and the data are set up."""
    if cfg.get("trainer") is None:  # none to check (digits.predict of an .onnx file)
        return
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    unchecked = ("_target_", "default_root_dir", "plugins")  # a run's folder, our own plugins
    arguments = {key: cfg.trainer[key] for key in cfg.trainer if key not in unchecked}
    if OmegaConf.is_dict(arguments.get("profiler")):  # a _target_ config (debug=profiler): its
        del arguments["profiler"]  # dirpath is the run's folder; Hydra instantiates it in the run
    arguments = OmegaConf.to_container(OmegaConf.create(arguments), resolve=True)
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)  # its start-up lines belong to the run, not the check
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            L.Trainer(**arguments, logger=False, callbacks=[], enable_checkpointing=False)
    except (ValueError, TypeError, ImportError, MisconfigurationException) as error:
        reason = " ".join(str(error).split())
        raise DigitsError(f"trainer: Lightning refuses these settings: {reason}") from error
    finally:
        lightning_log.setLevel(level)


def check_nodes(cfg: DictConfig) -> None:
    """More than one node needs a cluster that starts the other nodes' processes (SLURM, torchrun,
    ...); without one the first process waits for them forever."""
    nodes = OmegaConf.select(cfg, "trainer.num_nodes")
    if not isinstance(nodes, int) or nodes <= 1:
        return
    from lightning.fabric.plugins.environments import (
        LSFEnvironment,
        SLURMEnvironment,
        TorchElasticEnvironment,
    )

    clusters = (SLURMEnvironment, TorchElasticEnvironment, LSFEnvironment)
    if any(env.detect() for env in clusters) or "NODE_RANK" in os.environ:
        return
    raise DigitsError(
        f"trainer.num_nodes={nodes}: no cluster here to start the other nodes (no SLURM, torchrun "
        "or LSF; no NODE_RANK), so the run would wait forever; launch it on a cluster "
        "(hydra/launcher=slurm) or use trainer.num_nodes=1"
    )


def check_train(cfg: DictConfig) -> None:
    """What a training run needs beyond its schema: something to do, settings that agree, a
    network that fits MNIST's images, a checkpoint that fits and leaves something to train, a
    writable folder."""
    check_work_asked(cfg)
    check_monitors(cfg)
    check_epochs(cfg)
    check_network(cfg.model)
    check_pipeline(cfg.data)
    check_loggers(cfg)
    check_tune(cfg)
    if cfg.get("ckpt_path"):
        from digits.models.checkpoint import read_checkpoint  # heavy import, only when resuming

        checkpoint = read_checkpoint(cfg.ckpt_path)
        check_checkpoint_fits(cfg.ckpt_path, checkpoint["hyper_parameters"]["net"], cfg.model)
        check_work_left(checkpoint, cfg)
    check_writable(cfg.paths.log_dir)
    check_batches(cfg, check_data(cfg))


# Loggers whose library is an optional extra of digits: the module, and the extra that installs it.
OPTIONAL_LOGGERS = {"lightning.pytorch.loggers.MLFlowLogger": ("mlflow", "mlflow")}


def check_loggers(cfg: DictConfig) -> None:
    """A logger from an optional extra needs that extra installed."""
    for name, entry in (cfg.get("logger") or {}).items():
        module, extra = OPTIONAL_LOGGERS.get(str((entry or {}).get("_target_")), (None, None))
        if module and importlib.util.find_spec(module) is None:
            raise DigitsError(
                f"logger.{name}: needs {module}, not installed here: pip install -e '.[{extra}]' "
                "(or pick another logger, e.g. logger=tensorboard)"
            )


def check_tune(cfg: DictConfig) -> None:
    """Lightning's tuner runs on one device, from scratch."""
    if not cfg.get("tune"):
        return
    option = f"tune ({cfg.tune.finder})"
    devices = OmegaConf.select(cfg, "trainer.devices")
    if devices not in (1, "1", "auto") or cfg.trainer.num_nodes != 1:
        raise DigitsError(f"{option}: Lightning's tuner runs on one device; use trainer=default")
    if cfg.get("ckpt_path"):
        raise DigitsError(f"{option}: the tuner starts from scratch; leave out ckpt_path/resume")


def check_lr_find_steps(cfg: DictConfig, batches: int) -> None:
    """The learning-rate finder needs its steps within one epoch's training batches (else it stops
    early, short of its range)."""
    steps = OmegaConf.select(cfg, "tune.num_training")
    if OmegaConf.select(cfg, "tune.finder") == "lr_find" and steps > batches:
        raise DigitsError(
            f"tune.num_training={steps}: the learning-rate finder would stop after {batches} "
            f"steps ({limit_words(cfg)}), short of tune.max_lr; lower tune.num_training to "
            f"{batches} or allow more training batches"
        )


def limit_words(cfg: DictConfig) -> str:
    """How many training batches an epoch has, in the user's words."""
    limit = cfg.trainer.limit_train_batches
    return "one epoch's training batches" + (
        f" with trainer.limit_train_batches={limit}" if limit not in (None, 1.0) else ""
    )


def check_data(cfg: DictConfig) -> int | None:
    """MNIST is there (downloaded now if allowed) and whole, before the run directory is made;
    returns the training batches of an epoch on one device (None when not training)."""
    from digits.data.idx import check_mnist, ensure_mnist

    data = cfg.data
    ensure_mnist(data.root, data.download)
    training_images = check_mnist(data.root, data.val_size)
    if not cfg.train:
        return None
    devices = OmegaConf.select(cfg, "trainer.devices")  # checked later (check_devices): any value
    world = len(devices) if OmegaConf.is_list(devices) else devices
    world = world if isinstance(world, int) and not isinstance(world, bool) and world > 0 else 1
    per_device = math.ceil(math.ceil(training_images / data.batch_size) / world)
    limit = cfg.trainer.limit_train_batches
    if limit is None:
        return per_device
    return min(limit, per_device) if isinstance(limit, int) else int(per_device * limit)


def check_batches(cfg: DictConfig, batches: int | None) -> None:
    """Training needs training batches, and validation within an epoch needs that many."""
    if batches is None:
        return
    if batches == 0:
        raise DigitsError(
            f"trainer.limit_train_batches={cfg.trainer.limit_train_batches}: no training batches "
            "left, so nothing would train; allow some (e.g. 0.1 or 20), or test a trained model "
            "with train=false ckpt_path=<file>"
        )
    interval = cfg.trainer.val_check_interval
    every = cfg.trainer.check_val_every_n_epoch
    if isinstance(interval, int) and every is not None and interval > batches:
        raise DigitsError(
            f"trainer.val_check_interval={interval}: validates every {interval} training batches, "
            f"but an epoch has {batches} ({limit_words(cfg)}); use at most {batches}, a fraction "
            "of the epoch (e.g. 0.5), or trainer.check_val_every_n_epoch=null to count across "
            "epochs"
        )
    check_lr_find_steps(cfg, batches)


def check_pipeline(data: DictConfig) -> None:
    """Augmentation and device-resident images work on the in-memory images only."""
    if data.pipeline == "memory":
        return
    if data.augment:
        raise DigitsError("data.augment works on the in-memory pipeline: set data.pipeline=memory")
    if data.on_device is True:
        raise DigitsError(
            "data.on_device=true keeps the in-memory images on the device: set data.pipeline=memory"
        )


def check_work_asked(cfg: DictConfig) -> None:
    if not cfg.train and not cfg.test:
        raise DigitsError("train=false test=false: nothing to do; leave one of them true")
    if not cfg.train and not cfg.ckpt_path:
        raise DigitsError(
            "train=false: testing without training needs the model to test: give ckpt_path=<file> "
            "(or use python -m digits.evaluate ckpt_path=<file>)"
        )


def _monitors(cfg: DictConfig) -> dict[str, str]:
    """The metrics the run's callbacks monitor and its sweeper optimises, by key."""
    monitored = {
        f"callbacks.{name}.monitor": entry.monitor
        for name, entry in (cfg.get("callbacks") or {}).items()
        if entry and entry.get("monitor") is not None
    }
    return monitored | {"optimized_metric": cfg.optimized_metric}


def check_monitors(cfg: DictConfig) -> None:
    """What callbacks monitor and sweepers optimise must be a metric the model logs while fitting:
    never a test metric (the test set must not choose the model)."""
    from digits.models.classifier import FIT_METRICS  # the LightningModule: only where it trains

    for key, metric in _monitors(cfg).items():
        if metric in FIT_METRICS:
            continue
        why = (
            "the test set must never choose the model; "
            if str(metric).startswith("test/")
            else "not a metric the model logs while training; "
        )
        raise DigitsError(f"{key}={metric}: {why}use one of {', '.join(FIT_METRICS)}")
    for name, entry in (cfg.get("callbacks") or {}).items():
        if entry and entry.get("mode") not in (None, "min", "max"):
            raise DigitsError(f"callbacks.{name}.mode={entry.mode}: use one of min, max")


def check_epochs(cfg: DictConfig) -> None:
    """Epoch settings that contradict each other, or that would leave nothing to choose the best
    checkpoint by."""
    trainer = cfg.trainer
    if trainer.min_epochs is not None and trainer.min_epochs > trainer.max_epochs:
        raise DigitsError(
            f"trainer.min_epochs={trainer.min_epochs} is above trainer.max_epochs="
            f"{trainer.max_epochs}; raise max_epochs or lower min_epochs"
        )
    validated = [m for k, m in _monitors(cfg).items() if k.startswith("callbacks.")]
    if not cfg.train or not any(str(metric).startswith("val/") for metric in validated):
        return
    if trainer.limit_val_batches == 0:
        raise DigitsError(
            "trainer.limit_val_batches=0 turns validation off, but the best checkpoint is chosen "
            "on validation metrics; keep some (e.g. trainer.limit_val_batches=0.1), or drop that "
            "choice with ~callbacks.model_checkpoint"
        )
    every = trainer.check_val_every_n_epoch
    if every is not None and trainer.max_steps == -1 and every > trainer.max_epochs:
        raise DigitsError(
            f"trainer.check_val_every_n_epoch={every} with trainer.max_epochs={trainer.max_epochs}"
            ": no validation would run to choose the best checkpoint; validate at least once"
        )


def check_network(model: DictConfig) -> None:
    """The network must turn a 28x28 image into 10 scores: sizes that are each in range can still
    shrink the image to nothing (model=cnn model.kernel_size=30)."""
    from hydra.utils import instantiate

    from digits.models.networks import IMAGE_SIZE, NUM_CLASSES

    sizes = " ".join(f"model.{key}={value}" for key, value in model.items() if key[0] != "_")
    try:
        network = instantiate(model, _convert_="all")
    except InstantiationException as error:  # e.g. layers too large for this machine's memory
        reason = " ".join(str(error.__cause__ or error).split())
        raise DigitsError(f"{sizes}: cannot build this network ({reason})") from error
    try:
        scores = network(torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE))
    except (RuntimeError, ValueError) as error:
        reason = str(error).splitlines()[0]
        raise DigitsError(
            f"{sizes}: this network does not fit {IMAGE_SIZE}x{IMAGE_SIZE} images ({reason})"
        ) from error
    if scores.shape != (1, NUM_CLASSES):
        raise DigitsError(f"model: the network gives {tuple(scores.shape)}, not (1, {NUM_CLASSES})")


def check_work_left(checkpoint: dict[str, Any], cfg: DictConfig) -> None:
    """Resuming a finished run that has already trained as far as asked would change nothing but
    its files. (A run killed before it finished, e.g. in its test pass, may resume to finish.)"""
    run = RunDir.of_checkpoint(Path(cfg.ckpt_path))
    if run is None or not run.metrics_file.is_file() or not cfg.train:
        return
    epochs = checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]
    max_epochs, max_steps = cfg.trainer.max_epochs, cfg.trainer.max_steps
    epochs_done = max_epochs is not None and epochs >= max_epochs
    steps_done = max_steps not in (None, -1) and checkpoint["global_step"] >= max_steps
    if not (epochs_done or steps_done):
        return
    given = f"resume={cfg.resume}" if cfg.get("resume") else f"ckpt_path={cfg.ckpt_path}"
    limit = f"trainer.max_epochs={max_epochs}" if epochs_done else f"trainer.max_steps={max_steps}"
    raise DigitsError(
        f"{given}: the run has already trained {epochs} epoch{'s' * (epochs != 1)} "
        f"({checkpoint['global_step']} steps) "
        f"and {limit} asks for no more; nothing changed. To train longer, raise {limit.split('=')[0]}"
    )


def check_writable(
    folder: str | Path,
    key: str = "paths.log_dir",
    hint: str = "choose a writable folder with paths.log_dir=... or DIGITS_OUTPUT_DIR",
) -> None:
    """Fail now, not after an hour of work, if nothing can be written under `folder`. Folders
    made to find out are removed again: a refused command leaves nothing behind."""
    if not str(folder).strip():  # Path("") would quietly be the current folder
        raise DigitsError(f"{key}={folder}: empty; {hint}")
    given, folder = folder, Path(folder).expanduser().absolute()
    made = [f for f in (folder, *folder.parents) if not f.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        raise DigitsError(
            f"{key}={given}: cannot write there ({error.strerror}); {hint}"
        ) from error
    finally:
        for empty in made:  # deepest first
            with contextlib.suppress(OSError):
                empty.rmdir()


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


def check_export(cfg: DictConfig) -> None:
    """One model to export, and an output file name that fits the format, somewhere writable."""
    check_run_or_checkpoint(cfg, "exports")
    if cfg.run:
        run = RunDir(Path(cfg.run))
        if not run.checkpoints.is_dir():
            raise DigitsError(
                f"run={cfg.run}: not a run directory (no checkpoints/); for a multirun, give one "
                "of its jobs"
            )
        run.checkpoint(cfg.checkpoint)  # the best (or last) checkpoint must be there
    if cfg.output is None:
        return
    output, suffix = Path(cfg.output), EXPORT_SUFFIXES[cfg.format]
    if output.is_dir():
        raise DigitsError(
            f"output={output}: a folder; give a file name, e.g. {output}/model{suffix}"
        )
    if output.suffix.lower() != suffix:
        raise DigitsError(
            f"output={output}: a format={cfg.format} file is named *{suffix} (or choose the format "
            f"with format=)"
        )
    check_writable(output.parent, "output", "choose a file in a writable folder")


def check_serve(cfg: DictConfig) -> None:
    """The model file exists and the address can be listened on, before anything loads."""
    if not str(cfg.host).strip():  # uvicorn would listen on every network, unasked
        raise DigitsError(
            f"host={cfg.host}: empty; give an address: 127.0.0.1 (this machine only) or 0.0.0.0 "
            "(every network it is on)"
        )
    if not Path(cfg.ckpt_path).is_file():
        problem = "a folder" if Path(cfg.ckpt_path).is_dir() else "no such file"
        raise DigitsError(
            f"ckpt_path={cfg.ckpt_path}: {problem}; give a checkpoint (.ckpt) or an exported .onnx"
        )
    try:
        with socket.create_server((cfg.host, cfg.port)):
            pass
    except OSError as error:  # socket's own text repeats the address
        reason = (
            os.strerror(error.errno) if (error.errno or 0) > 0 else error.strerror or str(error)
        )
        raise DigitsError(
            f"host={cfg.host} port={cfg.port}: cannot listen there ({reason}); "
            "choose another port= (or host=)"
        ) from error


def check_predict(cfg: DictConfig) -> None:
    """Images given as file and folder names; where the preprocessed images go must be writable
    before any image is read; no Trainer settings for an .onnx file, which runs without one."""
    if is_onnx(cfg.ckpt_path) and cfg.trainer is not None:
        raise DigitsError(
            f"ckpt_path={cfg.ckpt_path}: an .onnx file runs on onnxruntime (CPU), not through "
            "Lightning's Trainer; leave out the trainer settings"
        )
    if cfg.trainer is not None and cfg.trainer.devices not in (1, "1"):
        raise DigitsError(
            f"trainer.devices={cfg.trainer.devices}: predict runs on one device; use "
            "trainer.devices=1"
        )
    given = OmegaConf.to_object(cfg.images) if OmegaConf.is_config(cfg.images) else cfg.images
    names = given if isinstance(given, list) else [given]
    if any(isinstance(name, list | dict) or name in ("", None) for name in names):
        raise DigitsError(
            f"images={given}: give image files and folders by name, e.g. images=[a.png,photos/]"
        )
    if cfg.mode != "digit" and cfg.preprocess == "naive":
        raise DigitsError(
            f"preprocess=naive: mode={cfg.mode} finds digits with MNIST's recipe; "
            "use mnist or mnist_v1"
        )
    if cfg.annotate and cfg.mode == "digit":
        raise DigitsError(
            f"annotate={cfg.annotate}: draws the digits found by mode=number or mode=auto; add one"
        )
    for key in ("save_preprocessed", "annotate"):
        if cfg[key]:
            check_writable(cfg[key], key, "choose a writable folder, or leave it out")


def check_explore(cfg: DictConfig) -> None:
    check_writable(cfg.out, "out", "choose a writable folder with out=...")


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
