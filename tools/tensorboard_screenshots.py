"""TensorBoard over a sweep, looked at in Debian's headless Chromium: screenshots of TIME SERIES,
CUSTOM SCALARS, HPARAMS (table and parallel coordinates), IMAGES and TEXT, and what each showed.

    .venv/bin/python tools/tensorboard_screenshots.py outputs/multiruns/<sweep> --out docs/

TensorBoard is served on 127.0.0.1 only. Writes tensorboard-<view>.png into --out and prints, as
JSON, each view's expected texts and whether the page showed them (tests/test_review.py checks it;
exit status 1 when one is missing).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from browser import launch
from servers import free_port, serving

# TIME SERIES filtered to the curves that compare runs.
CURVES = "^(train/(acc|loss_epoch)|val/(acc|loss))$"


def show_curves(page) -> None:
    page.get_by_role("combobox", name="Filter tags (regex)").fill(CURVES)
    page.keyboard.press("Escape")  # the tag suggestions would cover the charts
    page.get_by_role("button", name="Settings").first.click()  # closes the settings pane


def show_parallel_coordinates(page) -> None:
    page.get_by_text("PARALLEL COORDINATES VIEW", exact=True).first.click(timeout=60_000)


def show_mistakes(page) -> None:
    page.get_by_text("val/mistakes").last.scroll_into_view_if_needed(timeout=60_000)


# view: (URL fragment, what to do there first or None, texts the view must show)
VIEWS = {
    "time-series": ("timeseries", show_curves, ["val/acc", "train/acc", "val/loss"]),
    "custom-scalars": ("custom_scalars", None, ["train vs validation", "accuracy", "loss"]),
    "hparams-table": ("hparams", None, ["optimizer.lr", "data.batch_size", "val/acc_best"]),
    "hparams-parallel": ("hparams", show_parallel_coordinates, ["optimizer.lr", "test/acc"]),
    "images": ("images", None, ["samples/train", "val/confusion_matrix"]),
    "mistakes": ("images", show_mistakes, ["val/mistakes"]),
    "text": ("text", None, ["card/text_summary", "python -m digits.train", "val/acc_best"]),
}


@contextmanager
def tensorboard(logdir: Path) -> Iterator[str]:
    """TensorBoard on 127.0.0.1 over `logdir`; its URL."""
    url = f"http://127.0.0.1:{free_port()}"
    tensorboard_bin = Path(sys.executable).with_name("tensorboard")  # installed beside python
    command = [str(tensorboard_bin), "--logdir", str(logdir), "--host", "127.0.0.1"]
    with serving([*command, "--port", url.rsplit(":", 1)[1]], f"{url}/data/runs"):
        yield url


def look(page, url: str, fragment: str, prepare, texts: list[str]) -> dict[str, bool]:
    """Open one view; which of `texts` it shows (Playwright's text search enters shadow DOM)."""
    page.goto(f"{url}/#{fragment}")
    page.wait_for_load_state("networkidle")
    if prepare:
        prepare(page)
    seen = {wanted: shows(page, wanted) for wanted in texts}
    page.wait_for_timeout(3_000)  # charts finish drawing after their titles appear
    return seen


def shows(page, text: str, seconds: int = 60) -> bool:
    """Whether some visible element of the page holds `text` (within `seconds`)."""
    matches = page.get_by_text(text)
    for _ in range(seconds):
        if any(match.is_visible() for match in matches.all()):
            return True
        page.wait_for_timeout(1_000)
    return False


def trial_names(logdir: Path) -> list[str]:
    """What HPARAMS should call the runs under `logdir` (digits.training.review.trial_name)."""
    from digits.training.review import trial_name

    return sorted(
        trial_name(run.name, run.parents[1].name) for run in logdir.glob("**/tensorboard/*/")
    )


def capture(logdir: Path, out: Path) -> dict[str, dict[str, bool]]:
    """Screenshots of every view into `out`; what each showed (HPARAMS: its trials by name too)."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    report = {}
    with tensorboard(logdir) as url, sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        for name, (fragment, prepare, texts) in VIEWS.items():
            trials = trial_names(logdir) if name == "hparams-table" else []
            report[name] = look(page, url, fragment, prepare, [*texts, *trials])
            page.screenshot(path=out / f"tensorboard-{name}.png")
        browser.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logdir", type=Path, help="a sweep (or any folder of runs)")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="where the PNGs go")
    args = parser.parse_args()
    report = capture(args.logdir, args.out)
    print(json.dumps(report, indent=2))
    sys.exit(0 if all(all(seen.values()) for seen in report.values()) else 1)


if __name__ == "__main__":
    main()
