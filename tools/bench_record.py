"""Where `make bench` keeps what it measured: outputs/bench/<part>-<time>.json, one file per run of
each benchmark."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def record(part: str, result: dict) -> Path:
    """Write `result` as outputs/bench/<part>-<time>.json (no prefix for an empty `part`)."""
    stamp = f"{datetime.now():%Y-%m-%d_%H-%M-%S}"
    out = REPO / "outputs" / "bench" / (f"{part}-{stamp}.json" if part else f"{stamp}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return out
