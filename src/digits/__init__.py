"""digits: config-driven experiments for handwritten digit recognition."""

from pathlib import Path

__version__ = "0.1.0"


def config_dir() -> str:
    """The Hydra config folder: inside the package when installed from a wheel, else the repo's conf/."""
    packaged = Path(__file__).parent / "conf"
    return str(packaged if packaged.is_dir() else Path(__file__).parents[2] / "conf")
