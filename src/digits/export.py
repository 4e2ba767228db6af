"""Export a trained model: `python -m digits.export run=outputs/runs/<run>` (or `ckpt_path=<file>`).

Writes one file that classifies 0-1 images (N, 1, 28, 28) into class probabilities (N, 10) without
digits: ONNX (`format=onnx`, for onnxruntime in any language) or TorchScript (`format=torchscript`).
See digits.exported.formats for what the file holds. `format=web` writes a folder instead: a page
that classifies drawn digits in the browser, for any static host (digits.exported.web)."""

from dataclasses import dataclass
from pathlib import Path

import hydra
from omegaconf import MISSING, DictConfig

from digits.cli import launch, silence_known_warnings
from digits.config import config_dir
from digits.config.command_line import check_run_or_checkpoint
from digits.config.machine import check_writable
from digits.config.schema import setting, store_schemas
from digits.constraints import OneOf
from digits.errors import DigitsError, reports_user_errors
from digits.exported import EXPORT_SUFFIXES
from digits.exported.formats import export, exportable, metadata, onnx_proto
from digits.exported.web import check_runtime, check_site_folder, write_static_site
from digits.runs import RunDir


@dataclass
class ExportConfig:
    run: str | None = MISSING
    ckpt_path: str | None = MISSING
    checkpoint: str = setting(OneOf(("best", "last")))
    format: str = setting(OneOf(tuple(EXPORT_SUFFIXES)))
    output: str | None = MISSING
    web_runtime: str = MISSING


store_schemas(export=ExportConfig)


def output_path(cfg: DictConfig, ckpt_path: Path) -> Path:
    """`output=`, else the run's export/ folder, else beside the checkpoint."""
    suffix = EXPORT_SUFFIXES[cfg.format]
    if cfg.output:
        return Path(cfg.output)
    run = RunDir.of_checkpoint(ckpt_path)
    return run.exported(ckpt_path, suffix) if run else ckpt_path.with_suffix(suffix)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="export")
@reports_user_errors
def hydra_main(cfg: DictConfig) -> None:
    """Export the checkpoint (or the run's best or last) and say where it went."""
    silence_known_warnings()
    ckpt_path = (
        Path(cfg.ckpt_path) if cfg.ckpt_path else RunDir(Path(cfg.run)).checkpoint(cfg.checkpoint)
    )
    classifier = exportable(ckpt_path, cfg.format)
    path = output_path(cfg, ckpt_path)
    if cfg.format == "web":
        info = metadata(classifier, ckpt_path)
        model = onnx_proto(classifier, info).SerializeToString()
        write_static_site(model, path, info, Path(cfg.web_runtime))
    else:
        info = export(classifier, ckpt_path, path, cfg.format)
    accuracy = f", test accuracy {info['test_accuracy']}" if info["test_accuracy"] else ""
    print(f"{path}: {info['model']} from {ckpt_path}{accuracy}")


def check_export(cfg: DictConfig) -> None:
    """One model to export, and an output file name that fits the format, somewhere writable."""
    check_run_or_checkpoint(cfg, "exports")
    if cfg.run:
        run = RunDir(Path(cfg.run))
        if not run.checkpoints.is_dir():
            raise DigitsError(
                f"run={cfg.run}: not a run directory (no checkpoints/); for a multirun, give one "
                "of its jobs"
            )
        run.checkpoint(cfg.checkpoint)  # the best (or last) checkpoint must be there
    if cfg.format == "web":
        check_runtime(Path(cfg.web_runtime))
    if cfg.output is None:
        return
    output, suffix = Path(cfg.output), EXPORT_SUFFIXES[cfg.format]
    if cfg.format == "web":
        check_site_folder(output)
        check_writable(output.parent, "output", "choose a folder somewhere writable")
        return
    if output.is_dir():
        raise DigitsError(
            f"output={output}: a folder; give a file name, e.g. {output}/model{suffix}"
        )
    if output.suffix.lower() != suffix:
        raise DigitsError(
            f"output={output}: a format={cfg.format} file is named *{suffix} (or choose the format "
            f"with format=)"
        )
    check_writable(output.parent, "output", "choose a file in a writable folder")


def main() -> None:
    """`python -m digits.export`: check the command line, then run."""
    launch("export", hydra_main, check_export)


if __name__ == "__main__":
    main()
