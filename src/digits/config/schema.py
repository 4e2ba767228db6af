"""The schema of every config: each setting's type and allowed values, declared once.

Each YAML option in conf/ extends its dataclass here (`defaults: [/schema_mlp@_here_, _self_]`), so
Hydra rejects wrong types and unknown keys while composing, and `digits.config.validate` derives the
rest of the up-front check (ranges, choices, required values) and its messages from the same fields.
Where a setting is an argument of our own code (a network's constructor, `augment`), that signature
declares it and `schema_of` derives the dataclass. The values themselves, the defaults included,
live in conf/: fields here are MISSING.

Importing this module does not import Lightning (seconds that `digits.predict` of an .onnx file
does not need): what the schema takes from Lightning's Trainer signature is read when first checked.
"""

import dataclasses
import functools
import inspect
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from digits.constraints import (
    AT_LEAST_ONE,
    NOT_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    SEED,
    OneOf,
    Range,
)
from digits.data.augment import augment
from digits.data.idx import TRAIN_IMAGES
from digits.exported import EXPORT_SUFFIXES
from digits.inference.prediction import MODES
from digits.models.networks import NETWORKS, NUM_CLASSES
from digits.reading.preprocess import PREPROCESSORS


@dataclass(frozen=True)
class Nested:
    """A mapping checked against another schema, or null. (OmegaConf cannot merge a mapping into
    an optional dataclass field that is null, so such a field is typed Any and checked here.)"""

    schema: type
    example: str = ""

    def describe(self) -> str:
        return f"null or a mapping of {', '.join(f.name for f in dataclasses.fields(self.schema))}"


@dataclass(frozen=True)
class ExtraKeys:
    """Keys a node takes beyond its schema's fields (added with `+key=value`), and what they are."""

    what: str
    names: tuple[str, ...]


def setting(allowed: Range | OneOf | Nested | None = None, default: Any = MISSING) -> Any:
    """A dataclass field whose allowed values `digits.config.checks` enforces."""
    return field(default=default, metadata={"allowed": allowed})


TOP_K = Range(ge=1, le=NUM_CLASSES)
CONFIDENCE = Range(ge=0, le=1)
READ_TIMEOUT = Range(gt=0, le=600, note="seconds reading one image as a number may take")


def schema_of(function: Any, leave_out: tuple[str, ...] = (), target: bool = False) -> type:
    """The schema of a function's (or a class's) settings, derived from its signature: one field per
    argument, typed as annotated, allowing what its `Annotated` constraint allows, defaulting to its
    default (a network's have none: conf/model/ gives the values). `target`: a `_target_` first."""
    annotated = function.__init__ if isinstance(function, type) else function
    hints = typing.get_type_hints(annotated, include_extras=True)
    fields: list[tuple[str, Any, Any]] = [("_target_", str, field(default=MISSING))] * target
    for name, parameter in inspect.signature(function).parameters.items():
        if name in leave_out:
            continue
        kind, allowed, nullable = hints[name], None, False
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
            nullable = True
        if typing.get_origin(kind) is typing.Annotated:
            kind, allowed = typing.get_args(kind)[0], typing.get_args(kind)[1]
        default = MISSING if parameter.default is inspect.Parameter.empty else parameter.default
        fields.append((name, kind | None if nullable else kind, setting(allowed, default)))
    return dataclasses.make_dataclass(f"{getattr(function, '__name__', 'Settings')}Config", fields)


# --- data -------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    _target_: str = MISSING
    _convert_: str = MISSING
    root: str = MISSING
    download: bool = MISSING
    batch_size: int = setting(AT_LEAST_ONE)
    val_size: int = setting(
        Range(ge=1, lt=TRAIN_IMAGES, note=f"taken from MNIST's {TRAIN_IMAGES:,} training images")
    )
    split_seed: int = setting(SEED)
    folds: int | None = setting(
        Range(ge=2, le=TRAIN_IMAGES, note="k-fold cross-validation of the training images")
    )
    fold: int | None = setting(NOT_NEGATIVE)
    num_workers: int = setting(NOT_NEGATIVE)
    pin_memory: bool = MISSING
    augment: Any = setting(
        Nested(
            schema_of(augment, leave_out=("images", "labels")),
            example="{rotation:10,translate:0.1,scale:[0.9,1.1]}",
        )
    )
    pipeline: str = setting(OneOf(("memory", "torchvision")))
    on_device: Any = setting(OneOf(("auto", "true", "false")))


# --- the LightningModule and its network ------------------------------------------------------


@dataclass
class ModuleConfig:
    label_smoothing: float = setting(PROBABILITY)
    compile: bool = MISSING
    channels_last: bool = MISSING
    mean: float = MISSING
    std: float = setting(POSITIVE)
    calibrate: bool = MISSING
    ema_decay: float | None = setting(Range(gt=0, lt=1))


# --- optimizers and schedules (torch's classes, made partial) ---------------------------------


@dataclass
class AdamConfig:
    _target_: str = MISSING
    _partial_: bool = MISSING
    lr: float = setting(POSITIVE)
    weight_decay: float = setting(NOT_NEGATIVE)


@dataclass
class SGDConfig(AdamConfig):
    momentum: float = setting(PROBABILITY)


@dataclass
class SchedulerConfig:
    _target_: str = MISSING
    _partial_: bool = MISSING
    interval: str = setting(OneOf(("step", "epoch")))


@dataclass
class StepLRConfig(SchedulerConfig):
    step_size: int = setting(AT_LEAST_ONE)
    gamma: float = setting(POSITIVE)


@dataclass
class CosineConfig(SchedulerConfig):
    T_max: int | None = setting(AT_LEAST_ONE)
    eta_min: float = setting(NOT_NEGATIVE)


@dataclass
class OneCycleConfig(SchedulerConfig):
    max_lr: float = setting(POSITIVE)
    total_steps: int | None = setting(AT_LEAST_ONE)
    pct_start: float = setting(Range(gt=0, lt=1))


# --- Lightning's tuner (tune=...) ----------------------------------------------------------------


@dataclass
class LRFindConfig:
    finder: str = setting(OneOf(("lr_find",)))
    min_lr: float = setting(POSITIVE)
    max_lr: float = setting(POSITIVE)
    num_training: int = setting(AT_LEAST_ONE)
    mode: str = setting(OneOf(("exponential", "linear")))
    early_stop_threshold: float | None = setting(Range(gt=1))


@dataclass
class BatchSizeConfig:
    finder: str = setting(OneOf(("scale_batch_size",)))
    mode: str = setting(OneOf(("power", "binsearch")))
    steps_per_trial: int = setting(AT_LEAST_ONE)
    init_val: int = setting(AT_LEAST_ONE)
    max_trials: int = setting(AT_LEAST_ONE)
    max_val: int = setting(AT_LEAST_ONE)


# --- the Trainer ------------------------------------------------------------------------------


@functools.cache
def trainer_signature() -> inspect.Signature:
    """Lightning's Trainer signature (importing Lightning, the first time)."""
    import lightning as L

    return inspect.signature(L.Trainer)


@functools.cache
def trainer_literals(name: str) -> tuple[str, ...]:
    """The values a Trainer argument typed with Literals takes, from Lightning's own signature."""
    import lightning as L

    def literals(hint: Any) -> list[str]:
        if typing.get_origin(hint) is typing.Literal:
            return [str(value) for value in typing.get_args(hint)]
        return [value for arg in typing.get_args(hint) for value in literals(arg)]

    return tuple(dict.fromkeys(literals(typing.get_type_hints(L.Trainer.__init__)[name])))


class TrainerChoices(OneOf):
    """The choices of a Trainer argument, read from Lightning's signature when first checked."""

    def __init__(self, argument: str) -> None:
        object.__setattr__(self, "argument", argument)

    @property
    def options(self) -> tuple[str, ...]:  # type: ignore[override]
        return trainer_literals(self.argument)


class TrainerArguments(ExtraKeys):
    """The Trainer's own arguments (but those digits passes itself), read when first needed."""

    def __init__(self) -> None:
        object.__setattr__(self, "what", "another Lightning Trainer argument")

    @property
    def names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(set(trainer_signature().parameters) - {"callbacks", "logger"})


@dataclass
class TrainerConfig:
    """The Trainer arguments conf/ uses, and a few more worth range-checking (their defaults, which
    are Lightning's, are in conf/trainer/default.yaml). Any other Trainer argument may be added
    (`+trainer.x=...`): Lightning checks its value, up front (digits.config.checks.check_trainer)."""

    # train.py passes callbacks and loggers itself, from their own groups.
    EXTRA_KEYS: ClassVar[ExtraKeys] = TrainerArguments()

    _target_: str = MISSING
    default_root_dir: str | None = MISSING
    accelerator: str = MISSING
    devices: Any = MISSING  # a count, a list of device indices, or "auto"
    num_nodes: int = setting(AT_LEAST_ONE)
    strategy: Any = MISSING
    precision: Any = setting(TrainerChoices("precision"))
    min_epochs: int | None = setting(NOT_NEGATIVE)
    max_epochs: int = setting(AT_LEAST_ONE)
    max_steps: int = setting(Range(ge=-1, but_not=0, note="-1: no limit"))
    # Fractions (floats) or counts (integers) of batches.
    limit_train_batches: Any = setting(NOT_NEGATIVE)
    limit_val_batches: Any = setting(NOT_NEGATIVE)
    limit_test_batches: Any = setting(NOT_NEGATIVE)
    overfit_batches: Any = setting(NOT_NEGATIVE)
    fast_dev_run: Any = MISSING
    accumulate_grad_batches: int = setting(AT_LEAST_ONE)
    # A fraction of the training epoch (float) or a number of training batches (int).
    val_check_interval: Any = setting(POSITIVE)
    check_val_every_n_epoch: int | None = setting(AT_LEAST_ONE)
    num_sanity_val_steps: int = setting(Range(ge=-1, note="-1: all"))
    log_every_n_steps: int = setting(AT_LEAST_ONE)
    deterministic: Any = setting(OneOf(("true", "false", "warn")))
    gradient_clip_val: float | None = setting(NOT_NEGATIVE)
    enable_model_summary: bool = MISSING
    sync_batchnorm: bool = MISSING
    profiler: Any = MISSING
    plugins: Any = MISSING


# --- entry points -----------------------------------------------------------------------------


@dataclass
class PathsConfig:
    log_dir: str = MISSING
    # None only where Hydra shows the config instead of running (--cfg job --resolve): no run, no
    # directory.
    output_dir: str | None = MISSING


@dataclass
class HParamsConfig:
    groups: list[str] = MISSING
    settings: list[str] = MISSING
    plumbing: list[str] = MISSING
    limit: int = setting(Range(ge=1, le=100))
    metrics: list[str] = MISSING


@dataclass
class TrainConfig:
    data: Any = MISSING
    model: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = None
    module: Any = MISSING
    trainer: Any = MISSING
    logger: Any = None
    callbacks: Any = None
    paths: Any = MISSING
    task_name: str = MISSING
    run_name: str = MISSING
    hparams: HParamsConfig = field(default_factory=HParamsConfig)
    optimized_metric: str = MISSING
    seed: int | None = setting(SEED)
    train: bool = MISSING
    test: bool = MISSING
    ckpt_path: str | None = MISSING
    resume: str | None = MISSING
    reproduce: str | None = MISSING
    overwrite: bool = MISSING
    tune: Any = None


@dataclass
class DataRootConfig:
    """Where evaluate reads MNIST; the rest of the data settings are the run's own."""

    root: str | None = MISSING


@dataclass
class EvaluateConfig:
    trainer: Any = MISSING
    run: str | None = MISSING
    ckpt_path: str | None = MISSING
    checkpoint: str = setting(OneOf(("best", "last")))
    split: str = setting(OneOf(("test", "val")))
    data: DataRootConfig = field(default_factory=lambda: DataRootConfig())
    batch_size: int = setting(AT_LEAST_ONE)
    tta: int = setting(Range(ge=0, le=3, note="shifts of up to 3 px: 49 views"))
    ensemble: bool = MISSING
    mistakes: int = setting(NOT_NEGATIVE)
    top_pairs: int = setting(NOT_NEGATIVE)
    tensorboard: bool = MISSING


@dataclass
class PredictConfig:
    trainer: Any = None  # none for an .onnx file (digits.predict.main)
    ckpt_path: str = MISSING
    images: Any = MISSING  # a file or folder, or a list of them
    preprocess: str = setting(OneOf(tuple(PREPROCESSORS)))
    output: str = setting(OneOf(("table", "json")))
    top_k: int = setting(TOP_K)
    min_confidence: float = setting(CONFIDENCE)
    save_preprocessed: str | None = MISSING
    batch_size: int = setting(AT_LEAST_ONE)
    mode: str = setting(OneOf(MODES))
    annotate: str | None = MISSING
    read_timeout_s: float = setting(READ_TIMEOUT)


@dataclass
class ExportConfig:
    run: str | None = MISSING
    ckpt_path: str | None = MISSING
    checkpoint: str = setting(OneOf(("best", "last")))
    format: str = setting(OneOf(tuple(EXPORT_SUFFIXES)))
    output: str | None = MISSING
    web_runtime: str = MISSING


@dataclass
class ServeConfig:
    ckpt_path: str = MISSING
    host: str = MISSING
    port: int = setting(Range(ge=1, le=65535))
    preprocess: str = setting(OneOf(tuple(PREPROCESSORS)))
    top_k: int = setting(TOP_K)
    min_confidence: float = setting(CONFIDENCE)
    max_upload_mb: float = setting(Range(gt=0, le=100, note="what one image may be"))
    max_batch_images: int = setting(Range(ge=1, le=256, note="images in one /predict/batch"))
    batch_images: int = setting(Range(ge=1, le=1024, note="images in one model call"))
    batch_wait_ms: float = setting(Range(ge=0, le=100))
    body_timeout_s: float = setting(Range(gt=0, le=600))
    header_timeout_s: float = setting(Range(gt=0, le=600))
    keep_alive_s: float = setting(Range(gt=0, le=3600))
    read_timeout_s: float = setting(READ_TIMEOUT)
    cors_origins: list[str] = MISSING
    root_path: str = MISSING
    access_log: bool = MISSING


@dataclass
class ExploreConfig:
    data: Any = MISSING
    out: str = MISSING
    samples_per_class: int = setting(Range(ge=1, le=50, note="columns of one figure"))


SCHEMAS = {
    "train": TrainConfig,
    "evaluate": EvaluateConfig,
    "predict": PredictConfig,
    "explore": ExploreConfig,
    "export": ExportConfig,
    "serve": ServeConfig,
    "paths": PathsConfig,
    "data": DataConfig,
    "module": ModuleConfig,
    "adam": AdamConfig,
    "sgd": SGDConfig,
    "step": StepLRConfig,
    "cosine": CosineConfig,
    "onecycle": OneCycleConfig,
    "trainer": TrainerConfig,
    "lr_find": LRFindConfig,
    "batch_size": BatchSizeConfig,
}

# Settings that moved, with where they are now: old command lines get a pointer, and `resume=` of
# a run made before the move still works.
MOVED = {
    "data.mean": "module.mean",
    "data.std": "module.std",
    "label_smoothing": "module.label_smoothing",
    "compile": "module.compile",
    "channels_last": "module.channels_last",
    "data_root": "data.root",
}


def moved(override: str) -> str:
    """An override of a setting that has moved, at its new key."""
    key, _, value = override.partition("=")
    return f"{MOVED[key]}={value}" if key in MOVED else override


def register_schemas() -> None:
    """Store every schema in Hydra's ConfigStore as `schema_<name>`, for conf/ to extend (a
    network's as `schema_<its class name, lower case>`)."""
    store = ConfigStore.instance()
    networks = {net.__name__.lower(): schema_of(net, target=True) for net in NETWORKS}
    for name, schema in (SCHEMAS | networks).items():
        store.store(name=f"schema_{name}", node=schema)
