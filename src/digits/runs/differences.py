"""A run's settings as dotted keys (`model.hidden`: 128, `choices.model`: cnn), and which of them
differ between runs: what compare, reproduce= and a sweep's summary set side by side."""

from __future__ import annotations

import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

# Settings that say where a run came from, not what it was.
PROVENANCE = ("resume", "reproduce", "overwrite")
# What TensorBoard's HPARAMS tab shows of a run (conf/train.yaml's `hparams`): no difference in how
# it trained.
PRESENTATION = "hparams."


def differing_settings(settings: list[dict[str, str]]) -> list[str]:
    """The keys (of RunDir.settings()) whose values are not the same in every run. A key a run
    lacks counts as null: a setting added since, at its null (off) default, is no difference."""
    keys = dict.fromkeys(
        key
        for setting in settings
        for key in setting
        if key not in PROVENANCE and not key.startswith(PRESENTATION)
    )
    return [key for key in keys if len({setting.get(key, "None") for setting in settings}) > 1]


def settings_of(config: DictConfig, choices: dict[str, Any]) -> dict[str, str]:
    """A run's config groups' options (`choices.model`: cnn) and its composed config as dotted
    keys, values as written (interpolations unresolved: a path or a time that differs in every run
    is no difference in settings)."""
    chosen = {
        f"choices.{group}": str(option)
        for group, option in choices.items()
        if not group.startswith("hydra/")
    }
    return chosen | flatten(OmegaConf.to_container(config, resolve=False))


def flatten(node: Any, prefix: str = "") -> dict[str, str]:
    """A nested mapping as {dotted key: value as text}; lists stay whole (as JSON)."""
    if isinstance(node, dict) and node:
        return {
            k: v for key, sub in node.items() for k, v in flatten(sub, f"{prefix}{key}.").items()
        }
    return {prefix[:-1]: json.dumps(node) if isinstance(node, list | dict) else str(node)}
