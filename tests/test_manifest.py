"""The run manifest: code, packages, data, machine and how the run ended."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import HAS_REAL_DATA, REAL_DATA
from digits.data.idx import OFFICIAL_MD5, RAW_FILES
from digits.data.mnist import MNISTDataModule
from digits.runs import RunDir
from digits.runs.manifest import code_state, differences


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def repository(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text("lr = 0.1\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    return repo


def test_a_dirty_tree_is_recorded_with_its_diff(tmp_path: Path) -> None:
    repo = repository(tmp_path)
    source = repo / "pkg" / "__init__.py"
    clean, diff = code_state(source)
    assert clean["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert clean["dirty"] is False and diff == ""

    source.write_text("lr = 0.3\n")
    (repo / "pkg" / "new.py").write_text("x = 1\n")
    dirty, diff = code_state(source)
    assert dirty["commit"] == clean["commit"] and dirty["dirty"] is True
    assert "-lr = 0.1" in diff and "+lr = 0.3" in diff
    assert dirty["untracked"] == ["pkg/new.py"]
    # The diff applies to the commit: it is enough to get the code back.
    git(repo, "stash", "-q", "--include-untracked")
    (tmp_path / "code.diff").write_text(diff)
    git(repo, "apply", str(tmp_path / "code.diff"))
    assert source.read_text() == "lr = 0.3\n"


def test_code_outside_a_repository_has_no_commit(tmp_path: Path) -> None:
    (tmp_path / "installed.py").write_text("")
    assert code_state(tmp_path / "installed.py") == ({"commit": None, "dirty": None}, "")
    # A wheel installed into a virtualenv inside a checkout is not that checkout's code.
    site = repository(tmp_path) / ".venv" / "site-packages" / "pkg"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("")
    assert code_state(site / "__init__.py") == ({"commit": None, "dirty": None}, "")


def test_a_finished_run_has_its_manifest_and_packages(trained_run: Path, data_root: Path) -> None:
    run = RunDir(trained_run)
    manifest = run.manifest()
    assert manifest["status"] == "completed" and manifest["exit_status"] == 0
    assert manifest["started"] <= manifest["ended"]
    assert "model=mlp" in manifest["command"] and manifest["seed"] == 42
    assert manifest["packages"]["torch"] and manifest["machine"]["python"].startswith("3.11")
    assert manifest["data"]["root"] == str(data_root.resolve())
    assert sorted(manifest["data"]["md5"]) == sorted(RAW_FILES)
    assert manifest["data"]["official"] is False  # the synthetic files
    installed = run.requirements_file.read_text().splitlines()
    assert f"torch=={manifest['packages']['torch']}" in installed


def test_real_mnist_is_recognised_as_the_official_files() -> None:
    if not HAS_REAL_DATA:
        pytest.skip(f"real MNIST not found under {REAL_DATA}")
    assert MNISTDataModule.provenance({"root": str(REAL_DATA)}) == {
        "root": str(REAL_DATA.resolve()),
        "md5": OFFICIAL_MD5,
        "official": True,
    }


def test_differences_name_code_packages_and_data() -> None:
    then = {
        "code": {"commit": "a", "diff_md5": None},
        "packages": {"torch": "2.14.1", "numpy": "2.4.6"},
        "data": {"md5": {"f": "1"}},
    }
    assert differences(then, json.loads(json.dumps(then))) == []
    now = {
        "code": {"commit": "b", "diff_md5": None},
        "packages": {"torch": "2.14.1", "numpy": "2.5.0"},
        "data": {"md5": {"f": "2"}},
    }
    found = differences(then, now)
    assert len(found) == 3
    assert found[0].startswith("code: commit a then, b now")
    assert found[1] == "package numpy: 2.4.6 then, 2.5.0 now"
    assert found[2].startswith("data:")
