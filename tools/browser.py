"""Debian's Chromium, headless, as these machines need it: as root it needs --no-sandbox, and the
rest keep it off the network (Playwright gives it a fresh profile folder of its own). Used by the
browser tests and tools/tensorboard_screenshots.py."""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(playwright):  # -> playwright.sync_api.Browser
    """Chromium through Playwright (its own browser download is never used)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
