"""A run's manifest: what produced it (code, packages, data, machine, command), so that a result
can be trusted, reproduced and set beside another months later.

`recording(run_dir, cfg)` writes manifest.json when the run starts (status "running") and completes
it when the run ends, however it ends; the full package list goes to requirements.txt and, when the
code had uncommitted changes, their diff to code.diff (paths: RunDir).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from optuna.exceptions import TrialPruned  # a search's pruner stopped the run

from digits.atomic import write_text
from digits.errors import user_error
from digits.runs.differences import settings_of
from digits.runs.lineage import parent_record
from digits.runs.run_dir import RunDir, md5

# The packages whose versions decide a result; requirements.txt holds every installed one.
KEY_PACKAGES = (
    "digits",
    "torch",
    "torchvision",
    "lightning",
    "torchmetrics",
    "hydra-core",
    "omegaconf",
    "numpy",
    "onnxruntime",
    "optuna",
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def git(source: Path, *args: str) -> str | None:
    """A git command's output in the repository holding `source`, or None (no git, no repo)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(source.parent), *args], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


# digits' own source, whose repository the manifest describes (a file long tracked).
SOURCE = Path(__file__).resolve().parents[1] / "__init__.py"


def code_state(source: Path = SOURCE) -> tuple[dict[str, Any], str]:
    """The commit `source` is at, whether its repository had changes, and their diff ("" if none).
    Nothing for an installed wheel: its files are not the repository's, even inside one."""
    if git(source, "ls-files", "--error-unmatch", source.name) is None:
        return {"commit": None, "dirty": None}, ""
    status = git(source, "status", "--porcelain", "--untracked-files=normal") or ""
    diff = git(source, "diff", "HEAD", "--binary") or ""
    untracked = [line[3:] for line in status.splitlines() if line.startswith("??")]
    state = {
        "commit": (git(source, "rev-parse", "HEAD") or "").strip() or None,
        "dirty": bool(status.strip()),
        "diff_md5": hashlib.md5(diff.encode(), usedforsecurity=False).hexdigest() if diff else None,
        "untracked": untracked[:50],
    }
    return state, diff


def installed_packages() -> list[str]:
    """Every installed distribution as `name==version` (what `pip freeze` lists, read from the
    environment's metadata: no pip process, and it works where pip is absent, as under uv)."""
    found = {
        dist.metadata["Name"]: dist.version
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"]
    }
    return [
        f"{name}=={version}"
        for name, version in sorted(found.items(), key=lambda item: item[0].lower())
    ]


def package_versions(installed: list[str]) -> dict[str, str | None]:
    versions = dict(line.split("==", 1) for line in installed)
    lowered = {name.lower(): version for name, version in versions.items()}
    return {name: lowered.get(name) for name in KEY_PACKAGES}


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine(accelerator: str) -> dict[str, Any]:
    """Python, OS, CPU and, when the run may use one, the GPUs with their CUDA version."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "os": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "accelerator": accelerator,
    }
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["cuda"] = torch.version.cuda
    return info


def data_provenance(data: DictConfig) -> dict[str, Any]:
    """What the run reads, as its data option records it (MNIST: each file's MD5 and whether all
    are the official files; a folder: where, and a digest of the files and labels)."""
    settings = OmegaConf.to_container(data, resolve=True)
    return get_class(settings.pop("_target_")).provenance(settings)


def command_line(program: str = "digits.train") -> str:
    return shlex.join(["python", "-m", program, *sys.argv[1:]])


def exit_status(error: BaseException | None) -> tuple[str, int]:
    """How a run ended, in words and as the process's exit status."""
    if error is None:
        return "completed", 0
    if isinstance(error, TrialPruned):
        return "pruned", 0
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", 130
    if isinstance(error, SystemExit):  # Lightning's answer to Ctrl-C (1), ours to SIGTERM (143)
        return "interrupted", error.code if isinstance(error.code, int) else 1
    mistake = user_error(error)
    return "failed", mistake.exit_code if mistake else 1


def recorded_settings(cfg: DictConfig) -> dict[str, Any]:
    """The run's overrides and composed settings as the run itself saw them, so that a damaged or
    replaced .hydra/ folder cannot pass unnoticed (reproduce= compares them)."""
    if not HydraConfig.initialized():
        return {}
    hydra = HydraConfig.get()
    overrides = [o for o in hydra.overrides.task if not o.startswith("hydra")]
    return {"overrides": list(overrides), "settings": settings_of(cfg, hydra.runtime.choices)}


def start(
    run_dir: RunDir, cfg: DictConfig, program: str, parent: dict[str, Any] | None
) -> dict[str, Any]:
    """Write the manifest (and requirements.txt, code.diff) as the run starts: `program` made it
    (digits.train, digits.adapt), from the model `parent` (digits.runs.lineage), if any."""
    code, diff = code_state()
    installed = installed_packages()
    manifest = {
        "status": "running",
        "started": now(),
        "ended": None,
        "exit_status": None,
        "command": command_line(program),
        "seed": cfg.get("seed"),
        **recorded_settings(cfg),
        "code": code,
        "packages": package_versions(installed),
        "machine": machine(str(cfg.trainer.get("accelerator", "auto"))),
        "data": data_provenance(cfg.data),
        "parent": parent,
    }
    run_dir.requirements_file.write_text("\n".join(installed) + "\n")
    if diff:
        run_dir.code_diff_file.write_text(diff)
    write(run_dir, manifest)
    return manifest


def finish(
    run_dir: RunDir, manifest: dict[str, Any], data: DictConfig, error: BaseException | None
) -> None:
    status, code = exit_status(error)
    manifest |= {"status": status, "ended": now(), "exit_status": code}
    if error is not None and status == "failed":
        error = user_error(error) or error
        manifest["error"] = (str(error).splitlines() or [type(error).__name__])[0]
    if not manifest["data"]["md5"]:  # downloaded during the run
        manifest["data"] = data_provenance(data)
    # What the run leaves: a checkpoint damaged or changed later no longer matches (checked on load).
    found = sorted(run_dir.checkpoints.glob("*.ckpt")) if run_dir.checkpoints.is_dir() else []
    manifest["checkpoints"] = {path.name: md5(path) for path in found}
    write(run_dir, manifest)


def write(run_dir: RunDir, manifest: dict[str, Any]) -> None:
    write_text(run_dir.manifest_file, json.dumps(manifest, indent=2) + "\n", "the manifest")


@contextmanager
def recording(
    run_dir: RunDir,
    cfg: DictConfig,
    program: str = "digits.train",
    parent: dict[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Keep the run's manifest from its start to its end (completed, failed, interrupted); a
    training run's parent is its `init_from=`."""
    if parent is None and cfg.get("init_from"):
        parent = parent_record(cfg.init_from)
    manifest = start(run_dir, cfg, program, parent)
    try:
        yield manifest
    except BaseException as error:
        finish(run_dir, manifest, cfg.data, error)
        raise
    finish(run_dir, manifest, cfg.data, None)


def differences(original: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two runs' code, packages and data, one line each."""
    lines = []
    old_code, new_code = original.get("code", {}), new.get("code", {})
    if old_code.get("commit") != new_code.get("commit"):
        lines.append(f"code: commit {old_code.get('commit')} then, {new_code.get('commit')} now")
    elif old_code.get("diff_md5") != new_code.get("diff_md5"):
        lines.append("code: the uncommitted changes differ (see both runs' code.diff)")
    for name, version in original.get("packages", {}).items():
        if new.get("packages", {}).get(name) != version:
            lines.append(f"package {name}: {version} then, {new['packages'].get(name)} now")
    if original.get("data", {}).get("md5") != new.get("data", {}).get("md5"):
        lines.append("data: the data files differ (manifest.json: data.md5)")
    return lines
