"""Hydra's command line: its flags, read before Hydra starts (to check the overrides first), and
overrides parsed and written in its grammar.

Hydra's own parser is private (hydra._internal); its flags are public, listed by `--hydra-help` and
in Hydra's docs. This parser reads the same flags; tests/test_config.py pins it against Hydra's, so
a Hydra upgrade that adds a flag fails a test rather than a user's command line."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException

from digits.errors import DigitsError

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


def parse_overrides(args: Sequence[str]) -> list[Override]:
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


def override_value(argument: str) -> str:
    """The value of an override (`key=value`) as Hydra reads it: quotes taken off."""
    (parsed,) = parse_overrides([argument])
    return str(parsed.value())


def override(key: str, value: str | Path) -> str:
    """`key=value` in Hydra's grammar, the value quoted so that any path reads back as it is
    (spaces, accents, commas, =)."""
    return f"{key}={quoted(value)}"


def quoted(value: str | Path) -> str:
    """A value as a quoted string of Hydra's grammar: a quote, and backslashes before one or at
    the end, escaped."""
    escaped = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", str(value))
    escaped = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped)
    return f"'{escaped}'"
