"""Hydra's command-line flags, read before Hydra starts (to check the overrides first).

Hydra's own parser is private (hydra._internal); its flags are public, listed by `--hydra-help` and
in Hydra's docs. This parser reads the same flags; tests/test_config.py pins it against Hydra's, so
a Hydra upgrade that adds a flag fails a test rather than a user's command line."""

from __future__ import annotations

import argparse

INFO = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")


def hydra_flags() -> argparse.ArgumentParser:
    """A parser of Hydra's flags and overrides (`--version` only noted: Hydra prints it)."""
    parser = argparse.ArgumentParser(add_help=False)
    for flags in (("--help", "-h"), ("--hydra-help",), ("--version",), ("--resolve",),
                  ("--run", "-r"), ("--multirun", "-m"), ("--shell-completion", "-sc")):  # fmt: skip
        parser.add_argument(*flags, action="store_true")
    for flags in (("--package", "-p"), ("--config-path", "-cp"), ("--config-name", "-cn"),
                  ("--config-dir", "-cd"), ("--experimental-rerun",)):  # fmt: skip
        parser.add_argument(*flags)
    parser.add_argument("--cfg", "-c", choices=["job", "hydra", "all"])
    parser.add_argument("--info", "-i", const="all", nargs="?", choices=INFO)
    parser.add_argument("overrides", nargs="*")
    return parser
