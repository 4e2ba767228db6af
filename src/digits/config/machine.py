"""What the command asks of this machine, checked before anything heavy starts: the devices it
names, Lightning's own checks of the Trainer settings, a cluster for more than one node, and a
writable folder."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from digits.errors import DigitsError


def check_devices(cfg: DictConfig) -> None:
    """A GPU asked for must be there, and no more devices than this machine has (on the CPU each
    device is a process: trainer.devices=99 would start 99 of them)."""
    import torch  # here: the other checks, and a command line without a trainer, need none

    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator"))
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if gpu and not torch.cuda.is_available():
        raise DigitsError(
            f"trainer.accelerator={accelerator}: no CUDA GPU is visible on this machine; "
            "run on the CPU with trainer=cpu (or trainer.accelerator=cpu)"
        )
    check_nodes(cfg)
    devices = OmegaConf.select(cfg, "trainer.devices")
    if devices is None or devices in ("auto", -1, "-1"):
        return
    count = torch.cuda.device_count() if gpu else os.cpu_count() or 1
    kind = "CUDA GPU" if gpu else "CPU core"
    wanted = len(devices) if OmegaConf.is_list(devices) else devices
    if not isinstance(wanted, int) or isinstance(wanted, bool) or not 1 <= wanted <= count:
        raise DigitsError(
            f"trainer.devices={devices}: this machine has {count} {kind}{'s' * (count != 1)} "
            f"for accelerator={accelerator}; use 1..{count}, -1 (all) or auto"
        )


def check_trainer(cfg: DictConfig) -> None:
    """Lightning's own checks of the Trainer settings (accelerator, strategy, profiler, ...), run
    now by building a bare Trainer, not after the run directory and the data are set up."""
    if cfg.get("trainer") is None:  # none to check (digits.predict of an .onnx file)
        return
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    unchecked = ("_target_", "default_root_dir", "plugins")  # a run's folder, our own plugins
    arguments = {key: cfg.trainer[key] for key in cfg.trainer if key not in unchecked}
    if OmegaConf.is_dict(arguments.get("profiler")):  # a _target_ config (debug=profiler): its
        del arguments["profiler"]  # dirpath is the run's folder; Hydra instantiates it in the run
    arguments = OmegaConf.to_container(OmegaConf.create(arguments), resolve=True)
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)  # its start-up lines belong to the run, not the check
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            L.Trainer(**arguments, logger=False, callbacks=[], enable_checkpointing=False)
    except (ValueError, TypeError, ImportError, MisconfigurationException) as error:
        reason = " ".join(str(error).split())
        raise DigitsError(f"trainer: Lightning refuses these settings: {reason}") from error
    finally:
        lightning_log.setLevel(level)


def check_nodes(cfg: DictConfig) -> None:
    """More than one node needs a cluster that starts the other nodes' processes (SLURM, torchrun,
    ...); without one the first process waits for them forever."""
    nodes = OmegaConf.select(cfg, "trainer.num_nodes")
    if not isinstance(nodes, int) or nodes <= 1:
        return
    from lightning.fabric.plugins.environments import (
        LSFEnvironment,
        SLURMEnvironment,
        TorchElasticEnvironment,
    )

    clusters = (SLURMEnvironment, TorchElasticEnvironment, LSFEnvironment)
    if any(env.detect() for env in clusters) or "NODE_RANK" in os.environ:
        return
    raise DigitsError(
        f"trainer.num_nodes={nodes}: no cluster here to start the other nodes (no SLURM, torchrun "
        "or LSF; no NODE_RANK), so the run would wait forever; launch it on a cluster "
        "(hydra/launcher=slurm) or use trainer.num_nodes=1"
    )


def check_writable(
    folder: str | Path,
    key: str = "paths.log_dir",
    hint: str = "choose a writable folder with paths.log_dir=... or DIGITS_OUTPUT_DIR",
) -> None:
    """Fail now, not after an hour of work, if nothing can be written under `folder`. Folders
    made to find out are removed again: a refused command leaves nothing behind."""
    if not str(folder).strip():  # Path("") would quietly be the current folder
        raise DigitsError(f"{key}={folder}: empty; {hint}")
    given, folder = folder, Path(folder).expanduser().absolute()
    made = [f for f in (folder, *folder.parents) if not f.exists()]
    try:
        for attempt in range(3):
            folder.mkdir(parents=True, exist_ok=True)
            try:
                with tempfile.TemporaryFile(dir=folder, buffering=0) as probe:  # no flush at close
                    probe.write(b"0" * 4096)
                    probe.flush()
                    os.fsync(probe.fileno())
                break
            except FileNotFoundError:  # another command checking it made and removed it: again
                if attempt == 2:
                    raise
    except OSError as error:
        raise DigitsError(
            f"{key}={given}: cannot write there ({error.strerror}); {hint}"
        ) from error
    finally:
        for empty in made:  # deepest first
            with contextlib.suppress(OSError):
                empty.rmdir()
