"""Loading a trained model from its checkpoint file alone: no config, no data."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from digits.errors import DigitsError
from digits.models import NETWORKS
from digits.models.base import DigitsModule
from digits.models.classifier import DigitClassifier
from digits.models.modules import module_for
from digits.models.networks import reads_numbers
from digits.runs import RunDir
from digits.runs.run_dir import md5
from digits.trusted_code import NETWORKS_GROUP, how_to_trust, trusted

# Checkpoints written before the model carried its normalisation (digits 0.1, first format) keep it
# in the data module's settings; these are MNIST's statistics, its default there.
FIRST_FORMAT_NORMALISATION = ("mean", "std")
# What a checkpoint's settings may name for Hydra to build. A checkpoint is a shared file and its
# settings are data: weights-only loading guards the pickle, but a `_target_` naming anything else
# (os.system, builtins.eval) would be called while the model is built. So: digits' own networks,
# and torch's optimizers and schedules (built only to train on).
NETWORK_TARGETS = frozenset(
    name
    for network in NETWORKS
    for name in (f"digits.models.{network.__name__}", f"{network.__module__}.{network.__name__}")
)
OPTIMIZER_TARGETS = ("torch.optim.",)


def trusted_network(target: str) -> bool:
    """Whether a checkpoint may name `target` as its network: one of digits' own, or your own
    that you trust (digits.trusted_code)."""
    return target in NETWORK_TARGETS or trusted(target, NETWORKS_GROUP)


def read_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """The checkpoint's contents (weights-only load), upgraded to the current format, or a one-line
    error naming the file (as the setting `key` gave it)."""
    path = Path(path)
    if path.is_dir():
        run = RunDir(path)
        example = run.last_checkpoint if run.is_run() else path / "<name>.ckpt"
        raise DigitsError(f"{key}={path}: a folder, not a checkpoint file (e.g. {example})")
    if not path.is_file():
        raise DigitsError(f"{key}={path}: no such file")
    if path.stat().st_size == 0:
        raise DigitsError(f"{key}={path}: an empty file, not a checkpoint")
    check_recorded_hash(path, key)
    if is_torchscript(path):
        raise DigitsError(
            f"{key}={path}: a TorchScript export (digits.export format=torchscript), for "
            "torch.jit.load in your own code; digits reads a checkpoint (.ckpt) or an ONNX "
            "export (.onnx)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # torch's own text would suggest weights_only=False
        raise DigitsError(
            f"{key}={path}: not a digits checkpoint (not a PyTorch file, or one holding "
            "objects; digits checkpoints hold plain values only)"
        ) from error
    except Exception as error:  # torch names no cause a user can act on: a cut-off copy, mostly
        reason = str(error).split("\n")[0]
        raise DigitsError(
            f"{key}={path}: not a readable checkpoint: truncated or damaged ({reason})"
        ) from error
    hparams = checkpoint.get("hyper_parameters", {}) if isinstance(checkpoint, dict) else {}
    if "net" not in hparams or "state_dict" not in checkpoint:
        raise DigitsError(f"{key}={path}: not a checkpoint of a digits model")
    checkpoint["path"] = str(path)
    check_builds_nothing_else(hparams, path, key)
    return upgrade(checkpoint)


def _leaves(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every plain value in nested settings, with where it is (e.g. hyper_parameters.net.hidden.0)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{where}.{index}")
    else:
        yield where, value


def check_builds_nothing_else(hparams: dict[str, Any], path: Path, key: str = "ckpt_path") -> None:
    """Refuse a checkpoint whose settings would make Hydra build anything but a digits network
    (and torch's optimizers and schedules): see NETWORK_TARGETS."""
    net = hparams["net"]
    target = net.get("_target_") if isinstance(net, dict) else None
    if not isinstance(target, str) or not trusted_network(target):
        known = ", ".join(sorted({f"digits.models.{n.__name__}" for n in NETWORKS}))
        raise DigitsError(
            f"{key}={path}: refused: its network is {target!r}, not one of digits' own "
            f"({known}) nor one you trust ({how_to_trust(NETWORKS_GROUP)}); a checkpoint's "
            "settings are never run as code"
        )
    settings = {key: hparams.get(key) for key in ("net", "optimizer", "scheduler")}
    leaves = list(_leaves(settings, "hyper_parameters"))
    for where, value in leaves:
        if not where.endswith("._target_") or where == "hyper_parameters.net._target_":
            continue  # a plain setting, or the network, checked above
        if not (isinstance(value, str) and value.startswith(OPTIMIZER_TARGETS)):
            raise DigitsError(
                f"{key}={path}: refused: {where} names {value!r} to build; a checkpoint may "
                "name only digits' networks and torch.optim's classes"
            )
    for where, value in leaves:
        if isinstance(value, str) and "${" in value:  # saved settings are resolved
            raise DigitsError(
                f"{key}={path}: refused: {where} holds an interpolation (${{...}}); a digits "
                "checkpoint's settings are plain values"
            )


def check_recorded_hash(path: Path, key: str = "ckpt_path") -> None:
    """A checkpoint in a run whose manifest recorded its MD5 at the run's end must still have it:
    a bit flipped on disk or in a copy would otherwise load and answer wrongly, without a word."""
    run = RunDir.of_checkpoint(path.absolute())
    if run is None or not run.manifest_file.is_file():
        return
    recorded = (run.manifest().get("checkpoints") or {}).get(path.name)
    if recorded and md5(path) != recorded:
        raise DigitsError(
            f"{key}={path}: refused: its MD5 differs from the one its run recorded "
            f"({run.manifest_file}): damaged or changed since the run ended"
        )


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive: a zip holding compiled code (torch.load would hand it to
    torch.jit.load, which weights-only loading refuses with a misleading message)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(
            name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist()
        )


def upgrade(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Bring an older checkpoint's settings up to DigitClassifier's and MNISTDataModule's
    signatures: a first-format normalisation moves from the data settings into the model's, and
    settings added since take the values that behave as before."""
    hparams = checkpoint["hyper_parameters"]
    data = checkpoint.get("datamodule_hyper_parameters") or {}
    if "decoding" in hparams:  # a number reader's: none was made before its first format
        return checkpoint
    for key in FIRST_FORMAT_NORMALISATION:
        if key not in hparams:
            if key not in data:
                raise DigitsError(
                    f"ckpt_path={checkpoint['path']}: holds no input normalisation ({key})"
                )
            hparams[key] = data[key]
    hparams.setdefault("compile", False)
    hparams.setdefault("channels_last", False)
    hparams.setdefault("calibrate", False)  # before calibration: its temperature stays 1
    hparams.setdefault("ema_decay", None)
    hparams.setdefault("freeze", None)  # before transfer learning: nothing frozen
    hparams.setdefault("unfreeze_at_epoch", None)
    hparams.setdefault("body_lr_scale", 1.0)
    if data:
        data.setdefault("on_device", "auto")  # before device-resident images
    return checkpoint


def model_from(
    checkpoint: dict[str, Any],
    module: Callable[..., DigitsModule] | None = None,
    **settings: Any,
) -> DigitsModule:
    """The trained model of a checkpoint read by `read_checkpoint`, in eval mode on the CPU;
    `settings` replace the module's own (e.g. compile=False). `module` builds it from them: by
    default the network's own (a DigitClassifier, or a NumberReader for a strip reader), or a
    DigitClassifier that trains another way (digits.adaptation)."""
    hparams = checkpoint["hyper_parameters"]
    model = (module or module_for(hparams["net"]))(**(hparams | settings))
    model.parent = checkpoint.get("parent")  # where its training started (init_from=), if anywhere
    # Metric states (train sums, val_acc_best) differ between versions and are not needed here.
    missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
    broken = [key for key in [*missing, *unexpected] if key.startswith(("net.", "ema."))]
    if broken:
        raise DigitsError(
            f"ckpt_path={checkpoint['path']}: weights do not fit the network ({', '.join(broken[:3])})"
        )
    not_finite = [
        name
        for name, tensor in model.state_dict().items()
        if name.startswith(("net.", "ema.", "temperature"))
        and tensor.is_floating_point()
        and not bool(tensor.isfinite().all())
    ]
    if not_finite:
        raise DigitsError(
            f"ckpt_path={checkpoint['path']}: refused: NaN or infinite weights in "
            f"{', '.join(not_finite[:3])}{' ...' if len(not_finite) > 3 else ''} (a run that "
            "diverged, or a damaged file)"
        )
    return model.eval()


def load_classifier(path: str | Path, **settings: Any) -> DigitClassifier:
    """Everything needed to classify 0-1 images (N, 1, 28, 28), from the checkpoint file alone;
    `settings` replace the module's own (e.g. compile=False)."""
    return model_from(read_checkpoint(path), **settings)


def digit_classifier_only(checkpoint: dict[str, Any], command: str, instead: str) -> None:
    """Refuse, in one line, a number reader's checkpoint (model=crnn) where `command` takes a
    digit classifier's; `instead` says what serves the number reader."""
    net = checkpoint["hyper_parameters"]["net"]
    if reads_numbers(net):
        network = str(net["_target_"]).rsplit(".", 1)[-1]
        raise DigitsError(
            f"ckpt_path={checkpoint['path']}: a number reader's checkpoint ({network}); "
            f"{command} takes a digit classifier's; {instead}"
        )
