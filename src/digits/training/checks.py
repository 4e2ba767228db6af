"""What a training run needs beyond its schema, checked before the run directory exists: something to
do, settings that agree, a network that fits MNIST's images, a checkpoint that fits and leaves
something to train, MNIST itself and enough batches, a writable folder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from digits.config.extras import require_extra
from digits.config.machine import check_writable
from digits.config.validate import check_by_signature
from digits.errors import DigitsError
from digits.runs.manifest import data_provenance
from digits.runs.naming import check_run_name
from digits.runs.run_dir import RunDir


def check_train(cfg: DictConfig) -> None:
    """What a training run needs beyond its schema: something to do, settings that agree, a
    network that fits MNIST's images, a checkpoint that fits and leaves something to train, a
    writable folder."""
    check_work_asked(cfg)
    check_monitors(cfg)
    check_epochs(cfg)
    check_network(cfg.model)
    check_freeze(cfg)
    check_loggers(cfg)
    if not OmegaConf.is_interpolation(cfg, "run_name"):  # given by the user (else made safe)
        check_run_name(str(cfg.run_name))
    check_tune(cfg)
    if cfg.task_name == "finetune" and not cfg.init_from:  # conf/experiment/finetune.yaml
        raise DigitsError(
            "experiment=finetune needs init_from=<run directory or checkpoint>: the trained "
            "model to fine-tune (and model=<its model> with its sizes)"
        )
    if cfg.init_from:
        from digits.training.transfer import check_init_from  # the LightningModule: heavy

        check_init_from(cfg)
    if cfg.get("ckpt_path"):
        from digits.models.checkpoint import read_checkpoint  # heavy import, only when resuming

        checkpoint = read_checkpoint(cfg.ckpt_path)
        check_checkpoint_fits(cfg.ckpt_path, checkpoint["hyper_parameters"]["net"], cfg.model)
        check_training_state(checkpoint, cfg)
        check_work_left(checkpoint, cfg)
    check_writable(cfg.paths.log_dir)
    check_batches(cfg, check_data(cfg))


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
    from digits.models.base import FIT_METRICS  # the LightningModule: only where it trains

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

    from digits.models.networks import IMAGE_SIZE, NUM_CLASSES, reads_numbers

    check_by_signature(model, "model.")  # your own network's settings, by its annotations
    if reads_numbers(model):
        check_strip_network(model)
        return
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


def check_strip_network(model: DictConfig) -> None:
    """A strip reader must give 11 scores (0-9 and the blank) for each frame of a strip."""
    from hydra.utils import instantiate

    from digits.models.networks import NUM_CLASSES
    from digits.reading.strips import STRIP_HEIGHT

    sizes = " ".join(f"model.{key}={value}" for key, value in model.items() if key[0] != "_")
    try:
        network = instantiate(model, _convert_="all")
        scores = network(torch.zeros(1, 1, STRIP_HEIGHT, 64))
    except (InstantiationException, RuntimeError, ValueError) as error:
        reason = " ".join(str(error.__cause__ or error).split())
        raise DigitsError(f"{sizes}: cannot build this network ({reason})") from error
    if scores.dim() != 3 or scores.shape[::2] != (1, NUM_CLASSES + 1):
        raise DigitsError(
            f"model: the network gives {tuple(scores.shape)} for a strip, not (1, frames, "
            f"{NUM_CLASSES + 1})"
        )


def check_freeze(cfg: DictConfig) -> None:
    """module.freeze names parts the network has and leaves some to train; body_lr_scale needs a
    head to set the body apart from."""
    from hydra.utils import instantiate

    from digits.models.networks import parts_of

    module = cfg.module
    if "freeze" not in module:  # a module that freezes nothing (module=sequence)
        return
    freeze, scale = module.freeze or [], module.body_lr_scale
    if module.unfreeze_at_epoch is not None and not freeze:
        raise DigitsError(
            f"module.unfreeze_at_epoch={module.unfreeze_at_epoch}: nothing is frozen to unfreeze; "
            "set module.freeze (e.g. [features])"
        )
    if not freeze and scale == 1:
        return
    network = instantiate(cfg.model, _convert_="all")
    parts = parts_of(network)
    name = type(network).__name__
    unknown = [part for part in freeze if part not in parts]
    if unknown:
        raise DigitsError(
            f"module.freeze=[{','.join(freeze)}]: the {name} network has no part '{unknown[0]}'; "
            f"its parts: {', '.join(parts)}"
        )
    trainable = [
        part
        for part in parts
        if part not in freeze and next(parts[part].parameters(), None) is not None
    ]
    if freeze and not trainable and module.unfreeze_at_epoch is None:
        raise DigitsError(
            f"module.freeze=[{','.join(freeze)}]: freezes the whole {name} network, so nothing "
            "would train; leave a part out (e.g. module.freeze=[features]) or unfreeze later "
            "(module.unfreeze_at_epoch)"
        )
    if scale != 1 and "head" not in parts:
        raise DigitsError(
            f"module.body_lr_scale={scale}: the {name} network has no part named 'head' to set "
            f"the body apart from (its parts: {', '.join(parts)}); define parts() on it"
        )


# Loggers whose library is an optional extra of digits.
OPTIONAL_LOGGERS = {"lightning.pytorch.loggers.MLFlowLogger": "mlflow"}


def check_loggers(cfg: DictConfig) -> None:
    """A logger from an optional extra needs that extra installed."""
    for name, entry in (cfg.get("logger") or {}).items():
        extra = OPTIONAL_LOGGERS.get(str((entry or {}).get("_target_")))
        if extra:
            require_extra(extra, f"logger.{name}", "pick another logger, e.g. logger=tensorboard")


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


def check_training_state(checkpoint: dict[str, Any], cfg: DictConfig) -> None:
    """Training on from a checkpoint continues its loops and optimizer: one saved with the weights
    only (ModelCheckpoint's save_weights_only) has neither."""
    missing = [key for key in ("loops", "optimizer_states") if key not in checkpoint]
    if not cfg.train or not missing:
        return
    given = f"resume={cfg.resume}" if cfg.get("resume") else f"ckpt_path={cfg.ckpt_path}"
    raise DigitsError(
        f"{given}: {cfg.ckpt_path} holds the weights only, without the training state to continue "
        f"from ({', '.join(missing)} missing); test it with train=false ckpt_path=<file>, or train "
        "anew"
    )


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


def check_data(cfg: DictConfig) -> int | None:
    """The data option's settings agree and its files are there (downloaded or decoded now, where
    it does that), before the run directory is made; returns the training batches of an epoch on
    one device (None when not training)."""
    from digits.data.building import build_data, option_name

    datamodule = build_data(cfg.data)  # its own checks of its settings: a DigitsError
    if not datamodule.LABELLED:
        raise DigitsError(
            f"data={option_name(cfg.data)}: images without labels teach nothing to train on; "
            "adapt a trained model to them: python -m digits.adapt ckpt_path=<run> "
            f"data={option_name(cfg.data)} data.root=<folder>"
        )
    check_reads_what_it_learns(cfg, datamodule)
    check_provenance(cfg.data)
    datamodule.prepare_data()
    training_images = datamodule.training_images()
    if not cfg.train:
        return None
    devices = OmegaConf.select(cfg, "trainer.devices")  # checked later (check_devices): any value
    world = len(devices) if OmegaConf.is_list(devices) else devices
    world = world if isinstance(world, int) and not isinstance(world, bool) and world > 0 else 1
    per_device = math.ceil(math.ceil(training_images / cfg.data.batch_size) / world)
    limit = cfg.trainer.limit_train_batches
    if limit is None:
        return per_device
    return min(limit, per_device) if isinstance(limit, int) else int(per_device * limit)


def check_reads_what_it_learns(cfg: DictConfig, datamodule: Any) -> None:
    """A strip reader (model=crnn) trains on strips of digits (data=numbers), a digit classifier on
    single digits."""
    from digits.data.building import option_name
    from digits.models.networks import reads_numbers

    network = str(cfg.model["_target_"]).rsplit(".", 1)[-1]
    if reads_numbers(cfg.model) and not datamodule.STRIPS:
        raise DigitsError(
            f"data={option_name(cfg.data)}: holds single digits, and the {network} network reads "
            "strips of several; train it on data=numbers (strips made of a digit set's digits, "
            f"e.g. data=numbers data@data.source={option_name(cfg.data)})"
        )
    if datamodule.STRIPS and not reads_numbers(cfg.model):
        raise DigitsError(
            f"data={option_name(cfg.data)}: holds strips of several digits, and the {network} "
            "network classifies one digit; strips train a sequence reader: model=crnn"
        )


def check_provenance(data: DictConfig) -> None:
    """A data option says what a run reads, for its manifest (one of your own must say it too)."""
    try:
        data_provenance(data)
    except NotImplementedError as error:
        raise DigitsError(
            f"data._target_={data['_target_']}: says not what a run reads; define its classmethod "
            "provenance(settings), recorded in the run's manifest.json (docs/your-own-data.md)"
        ) from error


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
