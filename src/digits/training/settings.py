"""The schemas of `digits.train`'s config (conf/train.yaml) and of the groups it chooses from that
are not our own classes: optimizers and schedules (torch's, made partial), Lightning's tuner and
Trainer, the run's paths. (Our own classes declare theirs: digits.data.mnist and .folder,
digits.models.settings.) Importing this module stores them in Hydra's ConfigStore and registers the
resolvers conf/train.yaml uses. It does not import Lightning (`digits.predict` of an .onnx file
composes the trainer group too): what the Trainer schema takes from Lightning's signature is read
when first checked."""

import functools
import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import MISSING

from digits.config.schema import ExtraKeys, setting, store_schemas
from digits.constraints import AT_LEAST_ONE, NOT_NEGATIVE, POSITIVE, PROBABILITY, SEED, OneOf, Range
from digits.runs import naming, run_dir

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
    (`+trainer.x=...`): Lightning checks its value, up front (digits.config.machine.check_trainer)."""

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


# --- digits.train itself ---------------------------------------------------------------------


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


@dataclass
class TrainConfig:
    MOVED: ClassVar[dict[str, str]] = MOVED  # the up-front check points old keys there

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
    init_from: str | None = MISSING
    init_strict: bool = MISSING
    resume: str | None = MISSING
    reproduce: str | None = MISSING
    overwrite: bool = MISSING
    tune: Any = None


store_schemas(
    train=TrainConfig,
    paths=PathsConfig,
    adam=AdamConfig,
    sgd=SGDConfig,
    step=StepLRConfig,
    cosine=CosineConfig,
    onecycle=OneCycleConfig,
    trainer=TrainerConfig,
    lr_find=LRFindConfig,
    batch_size=BatchSizeConfig,
)
# The resolvers conf/train.yaml uses: `${run:checkpoints}`, `${run_name:<run dir>}`.
run_dir.register_resolver()
naming.register_resolver()


def moved(override: str) -> str:
    """An override of a setting that has moved, at its new key."""
    key, _, value = override.partition("=")
    return f"{MOVED[key]}={value}" if key in MOVED else override
