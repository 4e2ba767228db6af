"""The configuration: where conf/ is, the schema every option is checked against, the checks.

Importing this package registers the schema (Hydra's ConfigStore) and the `${run:...}` resolver,
which composing conf/ needs."""

from pathlib import Path

from digits.config.schema import register_schemas
from digits.runs import naming
from digits.runs.run_dir import register_resolver


def config_dir() -> str:
    """The Hydra config folder: inside the package when installed from a wheel, else the repo's conf/."""
    packaged = Path(__file__).parents[1] / "conf"
    return str(packaged if packaged.is_dir() else Path(__file__).parents[3] / "conf")


def group_options(group: str) -> list[str]:
    """The options of a config group (conf/<group>/*.yaml), or [] for a key that is no group."""
    return sorted(path.stem for path in (Path(config_dir()) / group).glob("*.yaml"))


register_schemas()
register_resolver()
naming.register_resolver()

__all__ = ["config_dir", "group_options"]
