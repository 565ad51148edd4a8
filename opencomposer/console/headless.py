"""Headless Chromium driven by Selenium: how the console's browser test and `make bench` open
the page. Debian's `chromium` and `chromium-driver` and the `dev` extra's selenium; nothing is
downloaded (Selenium Manager is never asked: both paths are given).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 1280, 800


def missing() -> list[str]:
    """What is not installed, as install hints; empty when the browser can run."""
    needs = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        needs.append("selenium (pip install -e '.[dev]')")
    if chromium_path() is None:
        needs.append("Chromium (apt-get install -y chromium)")
    if driver_path() is None:
        needs.append("ChromeDriver (apt-get install -y chromium-driver)")
    return needs


def chromium_path() -> str | None:
    candidates = ("/usr/lib/chromium/chromium", *(shutil.which(n) for n in ("chromium", "chromium-browser")))
    return next((p for p in candidates if p and os.path.exists(p)), None)


def driver_path() -> str | None:
    candidates = (shutil.which("chromedriver"), "/usr/lib/chromium/chromedriver")
    return next((p for p in candidates if p and os.path.exists(p)), None)


def chrome(downloads: Path | None = None, width: int = WIDTH, height: int = HEIGHT) -> Any:
    """A headless Chromium whose viewport (not window) is width x height CSS pixels, muted, its
    console log kept, downloads saved to `downloads` without asking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = chromium_path(), driver_path()
    if chromium is None or chromedriver is None:
        raise RuntimeError("headless Chromium needs " + ", ".join(missing()))
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        f"--window-size={width},{height}",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
        "--force-device-scale-factor=1",
        "--lang=en-US",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if downloads is not None:
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(downloads),
                "download.prompt_for_download": False,
                "safebrowsing.enabled": False,
            },
        )
    browser = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    inner_width, inner_height = browser.execute_script("return [window.innerWidth, window.innerHeight]")
    browser.set_window_size(2 * width - inner_width, 2 * height - inner_height)
    return browser
