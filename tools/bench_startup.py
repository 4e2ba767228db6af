"""`make bench`'s start-up part: how long a command takes as a whole process, against a baseline run
in the same process of measuring (issue 46's targets in brackets).

    python tools/bench_startup.py [repeats=3]

  --help      `python -m digits.<command> --help` of every Hydra command against
              `python -c "import hydra, omegaconf"` (at most 3x)
  onnx        `python -m digits.predict` of one photo with an exported .onnx file against
              `python -c "import onnxruntime, PIL, numpy"` (at most 1.5x)
  fast        `python -m digits.train experiment=fast` against its raw twin (tools/bench.py's
              hand-written loop of the same recipe, all its epochs, then the test set) as whole
              processes (at most 1.3x)

Each figure is the median of `repeats` runs, the command and its baseline taking turns. Prints a
table and writes outputs/bench/startup-<time>.json. Needs real MNIST (DIGITS_DATA_DIR).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_record import REPO, record
from rich.console import Console
from rich.table import Table

PYTHON = sys.executable
COMMANDS = ("train", "evaluate", "predict", "adapt", "explore", "export", "serve")
TARGETS = {"help": 3.0, "onnx": 1.5, "fast": 1.3}
PHOTO = REPO / "docs" / "examples" / "photo.jpg"


def wall_time(command: list[str], cwd: Path = REPO) -> float:
    """Seconds `command` takes as a whole process; exits with its output if it fails."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def paired(command: list[str], baseline: list[str], repeats: int, cwd: Path = REPO) -> dict:
    """Median seconds of `command` and of `baseline`, taking turns, and their ratio."""
    ours, base = [], []
    for _ in range(repeats):
        base.append(wall_time(baseline, cwd))
        ours.append(wall_time(command, cwd))
    median, baseline_median = statistics.median(ours), statistics.median(base)
    return {"seconds": round(median, 3), "baseline_s": round(baseline_median, 3),
            "ratio": round(median / baseline_median, 2)}  # fmt: skip


def onnx_model(tmp: Path) -> Path:
    """A small model exported to ONNX: a few batches of the default MLP."""
    run_dir = tmp / "run"
    wall_time([PYTHON, "-m", "digits.train", "trainer.accelerator=cpu", "trainer.max_epochs=1",
               "trainer.limit_train_batches=20", "trainer.limit_val_batches=5",
               "trainer.limit_test_batches=5", "logger=none", f"hydra.run.dir={run_dir}"])  # fmt: skip
    wall_time([PYTHON, "-m", "digits.export", f"run={run_dir}", f"output={tmp / 'model.onnx'}"])
    return tmp / "model.onnx"


def main(repeats: int) -> None:
    results: dict[str, dict] = {}
    hydra_import = [PYTHON, "-c", "import hydra, omegaconf"]
    for command in COMMANDS:
        name = f"digits.{command} --help"
        results[name] = paired([PYTHON, "-m", f"digits.{command}", "--help"], hydra_import, repeats)
        results[name] |= {"target": TARGETS["help"], "against": "import hydra, omegaconf"}
    with tempfile.TemporaryDirectory() as tmp:
        model = onnx_model(Path(tmp))
        predict = [PYTHON, "-m", "digits.predict", f"ckpt_path={model}", f"images={PHOTO}"]
        ort_import = [PYTHON, "-c", "import onnxruntime, PIL, numpy"]
        results["digits.predict of one photo (.onnx)"] = paired(predict, ort_import, repeats) | {
            "target": TARGETS["onnx"], "against": "import onnxruntime, PIL, numpy"}  # fmt: skip
        fast = [PYTHON, "-m", "digits.train", "experiment=fast", "trainer.accelerator=cpu",
                f"hydra.run.dir={tmp}/fast", "overwrite=true"]  # fmt: skip
        twin = [PYTHON, str(REPO / "tools" / "bench.py"), "_measure", "whole-raw", "fast", "0"]
        results["digits.train experiment=fast (whole process)"] = paired(fast, twin, repeats) | {
            "target": TARGETS["fast"], "against": "its raw twin (whole process)"}  # fmt: skip
    table = Table(title=f"start-up: medians of {repeats}, each against its baseline")
    for column in ("command", "seconds", "baseline", "baseline s", "ratio", "target"):
        table.add_column(column, justify="left" if column in ("command", "baseline") else "right")
    for name, row in results.items():
        met = "[green]" if row["ratio"] <= row["target"] else "[red]"
        table.add_row(name, f"{row['seconds']:.2f}", row["against"], f"{row['baseline_s']:.2f}",
                      f"{met}{row['ratio']:.2f}x", f"{row['target']}x")  # fmt: skip
    Console().print(table)
    print(f"written: {record('startup', results)}")


if __name__ == "__main__":
    arguments = dict(arg.split("=", 1) for arg in sys.argv[1:])
    main(int(arguments.get("repeats", 3)))
