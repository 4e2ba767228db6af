"""`python -m digits.train reproduce=<run dir>`: rerun a run with its saved overrides into a new
directory (argv.py adds them), then set the new final metrics beside the original's and say what differs in code,
packages, data or settings between the two (manifest.json, .hydra/config.yaml)."""

from __future__ import annotations

import math
from typing import Any

from lightning.pytorch.utilities import rank_zero_only
from rich.console import Console
from rich.table import Table

from digits.runs import manifest
from digits.runs.differences import differing_settings
from digits.runs.run_dir import RunDir
from digits.runs.writing import write_json

# Metrics that measure the machine, not the model: shown, never expected to match.
TIMINGS = ("train_time_s", "wall_time_s", "train_images_per_s")


def metric_rows(then: dict[str, Any], now: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each number both runs have: the original's, today's and the difference."""
    numbers = {
        name
        for name, value in then.items()
        if isinstance(value, int | float) and isinstance(now.get(name), int | float)
    }
    return {
        name: {"original": then[name], "now": now[name], "difference": now[name] - then[name]}
        for name in sorted(numbers)
    }


def setting_differences(original: RunDir, new: RunDir) -> list[str]:
    """Settings the rerun composed differently (conf/ changed since, or overrides added now), from
    what the original's manifest recorded when it ran; and any difference between that record and
    the original's .hydra/ folder, whose overrides the rerun used (damaged, or written over)."""
    saved, recorded = original.settings(), original.manifest()
    then = recorded.get("settings", saved)  # a run made before manifests recorded settings
    replaced = differing_settings([then, saved])
    if recorded.get("overrides", original.overrides()) != original.overrides():
        replaced.append("overrides")
    lines = []
    if replaced:
        shown = ", ".join(replaced[:5]) + " ..." * (len(replaced) > 5)
        lines.append(
            f"the original's .hydra/ does not match its manifest.json ({shown}): the rerun used "
            ".hydra/overrides.yaml, which may not be what the original ran"
        )
    now = new.settings()
    return lines + [
        f"setting {key}: {then.get(key, '-')} then, {now.get(key, '-')} now"
        for key in differing_settings([then, now])
    ]


@rank_zero_only
def compare_with_original(original: RunDir, new: RunDir) -> dict[str, Any]:
    """Print the metrics side by side and the differences; save them as reproduction.json."""
    rows = metric_rows(original.metrics() or {}, new.metrics() or {})
    if original.manifest():
        warnings = manifest.differences(original.manifest(), new.manifest())
    else:
        warnings = ["the original has no manifest.json (made before runs kept one): its code, "
                    "packages and data cannot be checked"]  # fmt: skip
    warnings += setting_differences(original, new)
    model_metrics = {name: row for name, row in rows.items() if name not in TIMINGS}
    same = all(row["difference"] == 0 for row in model_metrics.values())
    result = {"original": str(original.path), "same": same, "metrics": rows, "warnings": warnings}
    write_json(new.reproduction_file, result)

    table = Table(title=f"reproduction of {original.path}", header_style="bold")
    for column in ("metric", "original", "now", "difference"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, row in rows.items():
        shown = [f"{row[c]:.6g}" if not math.isnan(row[c]) else "nan" for c in row]
        table.add_row(name + (" (timing)" if name in TIMINGS else ""), *shown)
    console = Console()
    console.print(table)
    verdict = "the same" if same else "different"
    console.print(f"metrics (timings aside) are {verdict} as the original's", soft_wrap=True)
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    return result
