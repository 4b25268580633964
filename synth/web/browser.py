"""Headless Chromium through Selenium, for the page's tests and its screenshots (Debian's ``chromium`` and
``chromium-driver`` packages; Selenium is in the ``dev`` extra)."""

from __future__ import annotations

import shutil
from pathlib import Path

from synth.errors import ExternalToolError

__all__ = ["chromium_paths", "headless_chromium"]


def chromium_paths() -> tuple[str, str] | None:
    """``(chromium, chromedriver)`` where both are installed, else None."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
    return (browser, driver) if browser and driver else None


def headless_chromium(*, width: int = 1366, height: int = 768, touch: bool = False, scale: float = 1.0):
    """A headless Chromium WebDriver whose page is ``width`` x ``height`` CSS pixels (``scale``: device pixels
    to one; ``touch``: a touch screen of ten points, so pointer events come as touches).

    Raises ExternalToolError when Chromium, its driver or Selenium is missing."""
    paths = chromium_paths()
    if paths is None:
        raise ExternalToolError("Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise ExternalToolError("Selenium is not installed (pip install -e '.[dev]')") from None
    browser, driver_path = paths
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
                 "--hide-scrollbars", "--no-first-run", "--disable-extensions", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": False})
        if touch:
            driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 10})
    except Exception:
        driver.quit()
        raise
    return driver
