"""The commands that the README and the docs pages show still work: every `python -m digits.<command>`
(or `digits-<command>`) composes and passes the up-front checks, every `make <target>` names a
target. A renamed option breaks the build here, not a reader's copy-paste."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from conftest import FAST, run_cli
from digits.compare import main as compare_main
from digits.config import config_dir
from digits.config.command_line import check_command_line
from digits.errors import DigitsError

ROOT = Path(__file__).resolve().parents[1]
# docs/extending.md shows files to add, not commands to run: tests/test_extending.py follows it.
PAGES = [
    ROOT / "README.md",
    *sorted(p for p in (ROOT / "docs").glob("*.md") if p.stem != "extending"),
]
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


def python_snippets(page: Path) -> list[tuple[str, str]]:
    """(where, code) for each ```python block of the page."""
    snippets, lines, start = [], page.read_text().splitlines(), None
    for number, line in enumerate(lines, 1):
        fence = FENCE.match(line.strip())
        if fence and start is None:
            start = number if fence[1] == "python" else -number
        elif fence:
            if start > 0:
                code = "\n".join(lines[start : number - 1]) + "\n"
                snippets.append((f"{page.relative_to(ROOT)}:{start}", code))
            start = None
    return snippets


SNIPPETS = [snippet for page in PAGES for snippet in python_snippets(page)]


@pytest.fixture(scope="module")
def first_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a small run where the getting-started tour puts one (outputs/runs/first)."""
    cwd = tmp_path_factory.mktemp("snippets")
    args = [*FAST, "trainer.max_epochs=1", "trainer.limit_train_batches=2",
            "hydra.run.dir=outputs/runs/first"]  # fmt: skip
    result = run_cli("digits.train", *args, cwd=cwd, data_root=data_root)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd


def test_the_pages_show_python_snippets() -> None:
    assert any("load_classifier" in code for _, code in SNIPPETS)


@pytest.mark.parametrize(("where", "code"), SNIPPETS, ids=[w for w, _ in SNIPPETS])
def test_a_python_snippet_runs_in_a_fresh_interpreter(
    where: str, code: str, first_run: Path
) -> None:
    """Each ```python block, as a reader pastes it, in a new process beside a small run."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=first_run, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{where}:\n{code}\n{result.stderr[-3000:]}"
