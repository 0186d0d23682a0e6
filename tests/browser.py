"""Headless Chromium for the playground's browser tests and its README screenshot: Debian's `chromium`
driven by its `chromium-driver` through Selenium (scripts/setup-test-tools.sh installs both). Nothing
is downloaded: Selenium Manager is told to stay offline and is handed both paths, and the browser's
own background traffic (updates, sync, metrics) is turned off. A fresh profile every time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",  # runs as root in containers and CI
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # a container's /dev/shm is often 64 MB
    "--no-default-browser-check",
    "--disable-extensions",
    "--hide-scrollbars",
)


def missing() -> str | None:
    """Why the browser cannot start here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing: run scripts/setup-test-tools.sh (Debian's chromium and chromium-driver)"
    return None


@contextmanager
def chromium(profile: Path, width: int = 1440, height: int = 900) -> Iterator:
    """A headless Chromium (selenium WebDriver) with a fresh profile in `profile`, the browser's
    console kept for `driver.get_log("browser")`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never fetch a browser or a driver
    reason = missing()
    if reason:
        raise RuntimeError(reason)
    profile.mkdir(parents=True, exist_ok=True)
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(profile / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()
