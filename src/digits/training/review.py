"""What TensorBoard shows to review runs (their names: digits.runs.naming): the handful of
hyperparameters that define a run beside its final metrics (HPARAMS), train and validation on one
chart (CUSTOM SCALARS), and a card with the command, the final metrics and the key settings (TEXT)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from digits.presentation.tables import interval_text
from digits.runs.naming import hydra_config, overrides, swept_keys

log = logging.getLogger(__name__)

# Train beside validation: CUSTOM SCALARS charts, each a list of tag patterns drawn together.
LAYOUT = {
    "train vs validation": {
        "accuracy": ["Multiline", ["^train/acc$", "^val/acc$"]],
        "loss": ["Multiline", ["^train/loss_epoch$", "^val/loss$"]],
    },
    "schedule": {"learning rate": ["Multiline", ["^train/lr-"]]},
}
# Lightning's LearningRateMonitor logs `lr-Adam`, a group of its own that TensorBoard (which orders
# groups by name) shows before train and val: here it joins the train group, after the curves.
LEARNING_RATE = "lr-"
# What OmegaConf.select returns for a key the config does not have.
MISSING_KEY = object()


def readable(value: Any) -> str | float | bool:
    """A config value as TensorBoard's hparams take it: floats and booleans as they are, the rest
    as short text (an integer as its digits, a mapping as `key=value ...`, null as `none`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # HPARAMS shows every number to three places: 64 as 64.000
    if isinstance(value, bool | float | str):
        return value
    if value is None:
        return "none"
    if isinstance(value, Mapping):
        return " ".join(f"{k}={readable(v)}" for k, v in value.items()) or "none"
    return str(list(value))


def run_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The hyperparameters that define a run: the options chosen for the run-defining groups, the
    declared key settings, then what the command line set or a sweep varied; plumbing (paths,
    loggers, callbacks...) left out, at most `hparams.limit` of them."""
    declared = cfg.hparams
    hydra = hydra_config()
    choices = OmegaConf.select(hydra, "runtime.choices", default={}) if hydra else {}
    found: dict[str, Any] = {group: readable(choices.get(group)) for group in declared.groups}
    changed = [o.split("=", 1)[0].lstrip("+~") for o in overrides(hydra) if "=" in o]
    plumbing = tuple(declared.plumbing)
    plumbing_dots = tuple(f"{prefix}." for prefix in plumbing)
    for key in [*declared.settings, *changed]:
        if key in found or key in choices or key in plumbing or key.startswith(plumbing_dots):
            continue
        # A declared setting this run's model or schedule does not have is left out.
        value = OmegaConf.select(cfg, key, default=MISSING_KEY)
        if value is not MISSING_KEY:
            found[key] = readable(
                OmegaConf.to_object(value) if OmegaConf.is_config(value) else value
            )
    if len(found) > declared.limit:
        log.warning("hparams: %d settings, keeping the first %d", len(found), declared.limit)
    return dict(list(found.items())[: declared.limit])


def card(
    cfg: DictConfig,
    hparams: Mapping[str, Any],
    metrics: Mapping[str, Any],
    command: str,
    lineage: str | None = None,
) -> str:
    """The run in markdown: the command, what it started from (`lineage`), the final metrics and
    the key settings."""
    lines = [f"**{cfg.run_name}**", "", f"`{command}`", ""]
    if lineage is None and cfg.get("init_from"):
        lineage = f"started from `{cfg.init_from}` (init_from)"
    if lineage:
        lines += [lineage, ""]
    lines += ["| metric | value |", "|---|---|"]
    lines += [
        f"| {name} | {metrics[name]:.4f} |" for name in cfg.hparams.metrics if name in metrics
    ]
    interval = metrics.get("test/acc_interval")
    if interval:
        lines.append(
            f"| test/acc 95% interval (Wilson) | {interval_text(interval['low'], interval['high'])} |"
        )
    lines += ["", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in hparams.items()]
    return "\n".join(lines)


def varied_hparams(chosen: Mapping[str, Any]) -> list[str]:
    """The hparams that set this run apart: what its multirun sweeps, or else what its command
    line set."""
    hydra = hydra_config()
    keys = swept_keys(hydra) or [o.split("=", 1)[0] for o in overrides(hydra) if "=" in o]
    return [key.lstrip("+~") for key in keys if key.lstrip("+~") in chosen]


def mark_varied(experiment_summary: Any, varied: list[str]) -> None:
    """Mark the varied hparams as `differs` in the experiment summary: TensorBoard lists those
    first and shows only the first five by default (in its table and parallel coordinates)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    value = experiment_summary.value[0]
    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    for info in data.experiment.hparam_infos:
        info.differs = info.name in varied
    value.metadata.plugin_data.content = data.SerializeToString()


def trial_name(run_name: str, folder: str) -> str:
    """The run's HPARAMS trial name: its name and its folder, where two runs share a name. A
    sweep's job number comes first, where the table's narrow column does not cut it off."""
    return f"{folder}: {run_name}" if folder.isdigit() else f"{run_name} ({folder})"


def name_trial(session_start: Any, name: str) -> None:
    """Name the run's HPARAMS trial (its session group; TensorBoard's default is the event folder's
    path, cut short in the table)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    value = session_start.value[0]
    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    data.session_start_info.group_name = name
    value.metadata.plugin_data.content = data.SerializeToString()


class ReviewLogger(TensorBoardLogger):
    """Lightning's TensorBoardLogger, with the train-vs-validation layout written once, the learning
    rate in the train group (LEARNING_RATE) and without the `epoch` counter Lightning adds to every
    log call: as the first chart of TIME SERIES it hides the curves, and the step axis and the CSV
    log already tell the epoch."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if not getattr(self, "_layout_written", False) and self.experiment is not None:
            self.experiment.add_custom_scalars(LAYOUT)
            self._layout_written = True
        shown = {
            f"train/{key}" if key.startswith(LEARNING_RATE) else key: value
            for key, value in metrics.items()
            if key != "epoch"
        }
        super().log_metrics(shown, step)

    def log_run(
        self,
        cfg: DictConfig,
        metrics: Mapping[str, Any],
        command: str,
        step: int,
        lineage: str | None = None,
    ) -> None:
        """HPARAMS (the run's defining settings and final metrics), its card (with `lineage`, the
        model it started from, in words) and its config."""
        from torch.utils.tensorboard.summary import hparams as hparams_summaries
        from torch.utils.tensorboard.writer import FileWriter

        chosen = run_hparams(cfg)
        final = {name: metrics[name] for name in cfg.hparams.metrics if name in metrics}
        # Metrics not logged as curves get one point, which the HPARAMS table reads.
        self.log_metrics({k: v for k, v in final.items() if "/" not in k}, step)
        experiment, session_start, session_end = hparams_summaries(chosen, final)
        mark_varied(experiment, varied_hparams(chosen))
        name_trial(session_start, trial_name(cfg.run_name, Path(self.save_dir).name))
        # In an event file of their own beside the run's: SummaryWriter writes only the summaries
        # it builds itself (add_hparams: into another folder), and the run's may be closed by now.
        writer = FileWriter(self.experiment.get_logdir())
        for summary in (experiment, session_start, session_end):
            writer.add_summary(summary)
        writer.close()
        # "card" sorts before "config" in the TEXT tab.
        self.experiment.add_text("card", card(cfg, chosen, metrics, command, lineage), step)
        config = OmegaConf.to_yaml(cfg, resolve=True)
        self.experiment.add_text("config", f"```yaml\n{config}```", step)
