"""Run names that say what ran: `<experiment>` or `<model>-<optimizer>`, plus the values a
multirun sweeps (`cnn-adam lr=0.003 batch_size=128`): the TensorBoard folder and MLflow run name,
through `${run_name:...}` in conf/train.yaml."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from digits.errors import DigitsError
from digits.runs.run_dir import RunDir, SweepDir

# The run name is a folder of the run directory (TensorBoard's version): one name, of a length
# every file system takes with room for the files inside.
MAX_NAME = 150


def hydra_config() -> DictConfig | None:
    return HydraConfig.get() if HydraConfig.initialized() else None


def overrides(hydra: DictConfig | None) -> list[str]:
    """The job's own overrides (a sweep job's values), Hydra's keys left out."""
    task = OmegaConf.select(hydra, "overrides.task", default=None) if hydra else None
    return [str(o) for o in task or [] if not str(o).startswith(("hydra", "~hydra", "+hydra"))]


def swept_keys(hydra: DictConfig | None) -> list[str]:
    """The keys a multirun varies: its command line's sweeps (multirun.yaml) and a search's space."""
    if hydra is None or hydra.mode != RunMode.MULTIRUN:
        return []
    multirun = SweepDir(Path(hydra.sweep.dir)).multirun_file
    given = (
        OmegaConf.select(OmegaConf.load(multirun), "hydra.overrides.task")
        if multirun.is_file()
        else []
    )
    parsed = OverridesParser.create().parse_overrides([str(o) for o in given or []])
    keys = [o.key_or_group for o in parsed if o.is_sweep_override()]
    space = OmegaConf.select(hydra, "sweeper.params", default=None) or {}
    return list(dict.fromkeys([*keys, *space]))


def short_names(keys: list[str]) -> dict[str, str]:
    """Each key by its last part (optimizer.lr -> lr), the whole key where last parts collide."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {
        key: part if last.count(part) == 1 else key for key, part in zip(keys, last, strict=True)
    }


def run_name(output_dir: str | None) -> str:
    """`<experiment>` or `<model>-<optimizer>`, then a multirun's swept values (`cnn-adam lr=0.003
    batch_size=128`). A run that already has a TensorBoard folder keeps it (resume=); there is no
    directory where Hydra only shows the config (`--cfg job --resolve`)."""
    folder = RunDir(Path(output_dir)).tensorboard if output_dir else None
    existing = [p.name for p in folder.glob("*") if p.is_dir()] if folder else []
    if len(existing) == 1:
        return existing[0]
    hydra = hydra_config()
    choices = OmegaConf.select(hydra, "runtime.choices", default={}) if hydra else {}
    experiment = choices.get("experiment")
    name = experiment or f"{choices.get('model', 'model')}-{choices.get('optimizer', 'optimizer')}"
    named_already = {"experiment", "model", "optimizer"} if not experiment else {"experiment"}
    values = dict(o.lstrip("+~").split("=", 1) for o in overrides(hydra) if "=" in o)
    swept = [k.lstrip("+~") for k in swept_keys(hydra) if k.lstrip("+~") not in named_already]
    shown = short_names(swept)
    parts = [f"{shown[key]}={values[key]}" for key in swept if key in values]
    return folder_name(" ".join([name, *parts]))


def folder_name(name: str) -> str:
    """A made-up run name as one folder's name: path separators replaced (a swept data.root=/a/b
    would nest folders), cut to MAX_NAME characters."""
    return name.replace("/", "_").replace("\\", "_")[:MAX_NAME]


def check_run_name(name: str) -> None:
    """A run name the user gives must name one folder inside the run directory."""
    if not name.strip() or name in (".", "..") or "/" in name or "\\" in name:
        raise DigitsError(
            f"run_name={name}: names the run's folder inside its run directory, so it cannot be "
            "empty, . or .., nor hold / or \\"
        )
    if len(name) > MAX_NAME:
        raise DigitsError(f"run_name={name[:40]}...: {len(name)} characters, at most {MAX_NAME}")


def register_resolver() -> None:
    """`${run_name:<run dir>}` in configs."""
    if not OmegaConf.has_resolver("run_name"):
        OmegaConf.register_new_resolver("run_name", run_name)
