"""docs/extending.md's steps, followed in a temporary copy of the repository: the new network, data
option, command and route each run for real (issue 46)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from servers import free_port, serving  # tools/servers.py

import digits
from conftest import FAST

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "extending.md"
FENCE = re.compile(r"^```(\w*)\s*$")


def page_parts(text: str) -> list[tuple[str, str]]:
    """The page as ("text", a paragraph joined into one line) and ("code", a fenced block)."""
    parts: list[tuple[str, str]] = []
    paragraph: list[str] = []
    code: list[str] | None = None
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            if code is None:
                parts += [("text", " ".join(paragraph))] if paragraph else []
                paragraph, code = [], []
            else:
                parts.append(("code", "\n".join(code) + "\n"))
                code = None
        elif code is not None:
            code.append(line)
        elif line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            parts.append(("text", " ".join(paragraph)))
            paragraph = []
    return parts + ([("text", " ".join(paragraph))] if paragraph else [])


def insert(path: Path, before: str, text: str, after: bool = False) -> None:
    lines = path.read_text().splitlines(keepends=True)
    (index,) = [i for i, line in enumerate(lines) if line.startswith(before)][:1] or [None]
    assert index is not None, f"{path}: no line starting {before!r}"
    index += after
    path.write_text("".join(lines[:index]) + text + "".join(lines[index:]))


def follow(steps: list[tuple[str, str]], repo: Path) -> list[str]:
    """Carry out each step of the page in `repo`; the steps done, as the page words them."""
    done = []
    for index, (kind, text) in enumerate(steps):
        if kind != "text" or not re.match(r"(In|Create) `", text):
            continue
        block = steps[index + 1][1] if index + 1 < len(steps) else ""
        path = repo / re.match(r"(?:In|Create) `([^`]+)`", text)[1]
        if text.startswith("Create"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block)
        elif line := re.search(r"(before|after) the line `([^`]+)`, add the line `([^`]+)`", text):
            insert(path, line[2], line[3] + "\n", after=line[1] == "after")
        elif line := re.search(r"before the line `([^`]+)`, add:$", text):
            insert(path, line[1], block)
        else:
            pairs = re.findall(r"`([^`]+)` with `([^`]+)`", text)
            assert pairs, f"a step the test cannot follow: {text}"
            for old, new in pairs:
                source = path.read_text()
                assert source.count(old) == 1, f"{path}: {old!r} is not there once"
                path.write_text(source.replace(old, new))
        done.append(text.split(",")[0] if text.startswith("In") else text)
    return done


def run(repo: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = os.environ | {"PYTHONPATH": str(repo / "src")} | env
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=environment, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_the_extending_page_adds_a_network_a_data_option_a_command_and_a_route(
    tmp_path: Path, data_root: Path
) -> None:
    repo = tmp_path / "repo"
    for part in ("src", "conf", "pyproject.toml"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        copy(ROOT / part, repo / part)
    done = follow(page_parts(PAGE.read_text()), repo)
    assert len(done) == 13, done
    work = tmp_path / "work"
    work.mkdir()
    env = {"DIGITS_DATA_DIR": str(data_root)}

    # The network: trained, checked, listed.
    short = [*FAST, "trainer.max_epochs=1", "trainer.limit_train_batches=2"]
    trained = run(repo, work, "-m", "digits.train", "model=logistic", *short,
                  "hydra.run.dir=outputs/runs/logistic", **env)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    refused = run(repo, work, "-m", "digits.train", "model=logistic", "model.dropout=2", **env)
    assert refused.returncode == 2 and "model.dropout=2" in refused.stderr
    helped = run(repo, work, "-m", "digits.train", "--help")
    assert "model: cnn, crnn, lenet, logistic, lstm, mlp" in helped.stdout

    # The data option: a real run on an .npz file of the synthetic digits.
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (200, 28, 28), dtype=np.uint8)
    np.savez(work / "digits.npz", images=images, labels=np.arange(200) % 10)
    from_npz = run(repo, work, "-m", "digits.train", "data=npz", "data.path=digits.npz",
                   "trainer.accelerator=cpu", "trainer.max_epochs=1",
                   "hydra.run.dir=outputs/runs/npz")  # fmt: skip
    assert from_npz.returncode == 0, from_npz.stderr[-3000:]
    manifest = json.loads((work / "outputs/runs/npz/manifest.json").read_text())
    assert manifest["data"]["md5"]
    missing = run(repo, work, "-m", "digits.train", "data=npz")
    assert missing.returncode == 2 and "data.path" in missing.stderr

    # The command.
    checkpoint = work / "outputs/runs/logistic/checkpoints/last.ckpt"
    described = run(repo, work, "-m", "digits.describe", f"ckpt_path={checkpoint}")
    assert described.returncode == 0, described.stderr[-3000:]
    assert "_target_: digits.models.Logistic" in described.stdout and "std:" in described.stdout
    gone = run(repo, work, "-m", "digits.describe", "ckpt_path=nothing.ckpt")
    assert gone.returncode == 2 and len(gone.stderr.strip().splitlines()) == 1

    # The route, on a real server.
    url = f"http://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "digits.serve", f"ckpt_path={checkpoint}",
               "host=127.0.0.1", f"port={url.rsplit(':', 1)[1]}"]  # fmt: skip
    environment = os.environ | {"PYTHONPATH": str(repo / "src")}
    with (
        serving(command, f"{url}/ready", cwd=work, env=environment),
        urllib.request.urlopen(f"{url}/version", timeout=30) as answer,
    ):
        version = json.loads(answer.read())
    assert version == {"digits": digits.__version__}
