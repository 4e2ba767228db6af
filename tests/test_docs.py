"""The commands that the README and the docs pages show still work: every `python -m digits.<command>`
(or `digits-<command>`) composes and passes the up-front checks, every `make <target>` names a
target. A renamed option breaks the build here, not a reader's copy-paste."""

from __future__ import annotations

import re
import shlex
import subprocess
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from digits.compare import main as compare_main
from digits.config import config_dir
from digits.config.command_line import check_command_line
from digits.errors import DigitsError

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The commands, as their console scripts name them; the Hydra ones have a conf/<command>.yaml.
COMMANDS_NAMED = {
    e.name.removeprefix("digits-")
    for e in entry_points(group="console_scripts")
    if e.name.startswith("digits-")
}
HYDRA_COMMANDS = {
    name for name in COMMANDS_NAMED if (Path(config_dir()) / f"{name}.yaml").is_file()
}
# `python -m digits.train ...`, `.venv/bin/python -m digits.train ...`, `.venv/bin/digits-train ...`
DIGITS = re.compile(r"^(?:\S*python3? -m digits\.|\S*digits-)(\w+)(?:\s+(.*))?$")
MAKE = re.compile(r"^make ([\w-]+)")
FENCE = re.compile(r"^```(\w*)\s*$")


def shown_commands(page: Path) -> list[tuple[str, str]]:
    """(where, command) for each command line in the page's code blocks and inline code: prompts
    and trailing comments dropped, continued lines joined."""
    found, lines, in_block = [], page.read_text().splitlines(), False
    pending = ""
    for number, line in enumerate(lines, 1):
        if FENCE.match(line.strip()):
            in_block = not in_block
            continue
        if in_block:
            text = pending + line.strip().removeprefix("$ ")
            if text.endswith("\\"):
                pending = text[:-1] + " "
                continue
            pending = ""
            candidates = [text]
        else:
            candidates = re.findall(r"`([^`]+)`", line)
        for text in candidates:
            command = re.sub(r"\s+#\s.*$", "", text).strip()
            if DIGITS.match(command) or MAKE.match(command):
                found.append((f"{page.relative_to(ROOT)}:{number}", command))
    return found


COMMANDS = [shown for page in PAGES for shown in shown_commands(page)]


def arguments(text: str | None) -> list[str]:
    # Placeholders such as <run> or <.onnx or .ckpt> stand for a value the reader fills in.
    return shlex.split(re.sub(r"<[^>]*>", "X", text or ""))


def test_the_pages_show_commands_of_every_kind() -> None:
    commands = {DIGITS.match(c)[1] for _, c in COMMANDS if DIGITS.match(c)}
    assert commands == COMMANDS_NAMED and "compare" not in HYDRA_COMMANDS
    assert any(MAKE.match(c) for _, c in COMMANDS)
    assert len(COMMANDS) > 60


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_a_shown_command_passes_the_up_front_checks(where: str, command: str) -> None:
    if make := MAKE.match(command):
        dry_run = subprocess.run(["make", "-n", make[1]], cwd=ROOT, capture_output=True, text=True)
        assert dry_run.returncode == 0, f"{where}: {command}: {dry_run.stderr.strip()}"
        return
    name, rest = DIGITS.match(command).groups()
    assert name in COMMANDS_NAMED, f"{where}: no command digits.{name}"
    if rest is None:  # the command's name alone, as in the README's table of commands
        return
    args = arguments(rest)
    if name == "compare":
        with pytest.raises(SystemExit) as shown:  # its own parser, asked for its usage
            compare_main([*args, "--help"])
        assert shown.value.code == 0
        return
    try:
        check_command_line(name, args, None)
    except DigitsError as error:
        pytest.fail(f"{where}: {command}\n  refused: {error}")


def test_a_renamed_option_is_caught() -> None:
    with pytest.raises(DigitsError, match=r"optimizer\.lrr"):
        check_command_line("train", arguments("optimizer.lrr=0.1"), None)
