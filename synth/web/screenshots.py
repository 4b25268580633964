"""Pictures of the page for docs/: a live engine (null output) plays a chord from the page's own keyboard in
headless Chromium, at a laptop's size and a 10-inch tablet's, and each is saved as a PNG.

Usage: .venv/bin/python examples/web_screenshots.py [--bundle presets/default] [--out docs]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import time
from pathlib import Path

__all__ = ["Shot", "SHOTS", "take_screenshots", "main"]


@dataclasses.dataclass(frozen=True)
class Shot:
    """One picture: its file name, the page's size in CSS pixels, and whether the screen is a touch screen."""

    name: str
    width: int
    height: int
    touch: bool = False


SHOTS = (
    Shot("web-laptop.png", 1366, 768),
    Shot("web-tablet.png", 800, 1280, touch=True),  # a 10-inch tablet standing up
    Shot("web-tablet-landscape.png", 1280, 800, touch=True),
)


@contextlib.contextmanager
def _playing_engine(bundle_path, *, preset: str | None):
    """A live engine on ``bundle_path`` (null output) and the page's server on a free port; yields the server."""
    from synth.bundle import load_bundle
    from synth.control.router import ControlRouter
    from synth.engine import Engine, EngineOptions, LiveDecoding
    from synth.host.live_engine import LiveEngine
    from synth.web.server import WebServer

    bundle = load_bundle(bundle_path)
    engine = Engine(bundle, EngineOptions(output_rate=48000, max_voices=16, initial_preset=preset),
                    decoding=LiveDecoding())
    live = LiveEngine(engine, output="null", blocksize=256)
    live.start()
    try:
        web = WebServer(ControlRouter(live), port=0)
        web.start()
        try:
            end = time.monotonic() + 60
            while not engine.timbres.presets_decoded() and time.monotonic() < end:
                time.sleep(0.1)
            yield web
        finally:
            web.stop()
    finally:
        live.stop()


def _wait(driver, script: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not driver.execute_script(script):
        if time.monotonic() > end:
            raise TimeoutError(f"the page did not get there: {script}")
        time.sleep(0.1)


_SET = "const el = arguments[0]; el.value = arguments[1]; el.dispatchEvent(new Event(arguments[2], {bubbles: true}));"


def _pose(driver, *, chord: str) -> None:
    """Move a few controls as a player would have, and hold ``chord`` on the computer keyboard."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    for k, value in ((0, "1.2"), (2, "-0.8"), (5, "0.6")):
        sliders = driver.find_elements(By.CSS_SELECTOR, f'#macros input[data-macro="{k}"]')
        if sliders:
            driver.execute_script(_SET, sliders[0], value, "input")
    actions = ActionChains(driver)
    for key in chord:
        actions.key_down(key)
    actions.perform()


def take_screenshots(*, bundle_path: str | Path, out_dir: str | Path, preset: str | None = None,
                     shots=SHOTS, chord: str = "adg") -> list[Path]:
    """Save each of ``shots`` under ``out_dir`` with ``chord`` held (computer keys) on ``bundle_path``'s
    ``preset``; returns the paths."""
    from selenium.webdriver.common.action_chains import ActionChains

    from synth.web.browser import headless_chromium

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with _playing_engine(bundle_path, preset=preset) as web:
        for shot in shots:
            driver = headless_chromium(width=shot.width, height=shot.height, touch=shot.touch)
            try:
                driver.get(web.url)
                _wait(driver, "return document.getElementById('link').dataset.state === 'open'"
                              " && document.querySelectorAll('.preset').length > 0")
                _pose(driver, chord=chord)
                _wait(driver, "return +document.getElementById('fig-voices').textContent >= 3")
                time.sleep(1.0)  # the meter and the picture settle on the chord
                path = out / shot.name
                driver.save_screenshot(str(path))
                saved.append(path)
                actions = ActionChains(driver)
                for key in chord:
                    actions.key_up(key)
                actions.perform()
                driver.execute_script("window.melsynth.send('/synth/panic', [])")
            finally:
                driver.quit()
    return saved


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="presets/default", help="model bundle (default presets/default)")
    parser.add_argument("--preset", default=None, help="the preset sounding (default: the bundle's first)")
    parser.add_argument("--out", default="docs", help="folder for the PNG files (default docs)")
    args = parser.parse_args(argv)
    for path in take_screenshots(bundle_path=args.bundle, out_dir=args.out, preset=args.preset):
        print(path)
    return 0
