"""The configuration machinery every command shares: where conf/ is, schemas derived from the code
that declares each setting (schema.py), the check of a composed config against them (validate.py),
the up-front check of a command line (command_line.py, hydra_flags.py) and of this machine (machine.py), and the optional
extras a command may need (extras.py).

It knows no command and no feature: each declares and stores its own schema (digits.config.schema),
and the features and commands import this package, never the reverse (import-linter checks it)."""

from contextvars import ContextVar
from pathlib import Path

from omegaconf import OmegaConf


def config_dir() -> str:
    """The Hydra config folder: inside the package when installed from a wheel, else the repo's conf/."""
    packaged = Path(__file__).parents[1] / "conf"
    return str(packaged if packaged.is_dir() else Path(__file__).parents[3] / "conf")


# The folders a command line adds with --config-dir (Hydra searches them for configs too), while
# its up-front check composes it (digits.config.command_line).
EXTRA_CONFIG_DIRS: ContextVar[tuple[Path, ...]] = ContextVar("extra_config_dirs", default=())


def group_options(group: str) -> list[str]:
    """The options of a config group (conf/<group>/*.yaml, and those of a --config-dir), or [] for
    a key that is no group."""
    folders = [Path(config_dir()), *EXTRA_CONFIG_DIRS.get()]
    return sorted({path.stem for folder in folders for path in (folder / group).glob("*.yaml")})


def command_groups(config_name: str) -> str:
    """The config groups a command's config chooses from (its defaults list), with their options,
    one per line: what its --help lists (conf/hydra/help/command.yaml)."""
    defaults = OmegaConf.load(Path(config_dir()) / f"{config_name}.yaml").get("defaults", [])
    groups = [
        group
        for entry in defaults
        if OmegaConf.is_dict(entry)
        for group in entry
        if group != "hydra" and group_options(group)
    ]
    lines = [f"{group}: {', '.join(group_options(group))}" for group in groups]
    return "\n".join(lines) or "(none; every setting is a key=value below)"


if not OmegaConf.has_resolver("command_groups"):
    OmegaConf.register_new_resolver("command_groups", command_groups)

__all__ = ["EXTRA_CONFIG_DIRS", "config_dir", "group_options"]
