"""The page in a real browser: Debian's Chromium, headless, driven by Selenium, playing a live engine (the
synthetic bundle, null output). Skipped, with the reason, only where Chromium or its driver is missing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from engine_fixtures import cents, f0_of, midi_hz, synthetic_bundle_path
from web_fixtures import chromium_or_skip, wait_until, web_session

RATE = 48000


@pytest.fixture(scope="module")
def browser():
    driver = chromium_or_skip(width=1366, height=768)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    with web_session(log_path=tmp_path_factory.mktemp("web-browser") / "take.json") as running:
        yield running


def open_page(driver, web, live) -> None:
    """Load the page and wait until it is connected and knows the bundle; nothing sounding."""
    from synth.control.messages import Panic

    live.submit(Panic())
    driver.get(web.url)
    wait_until(lambda: driver.execute_script(
        "return document.getElementById('link').dataset.state === 'open'"
        " && document.querySelectorAll('.preset').length > 0"
        " && document.querySelectorAll('.key').length > 0"
        " && document.getElementById('timbre').dataset.version !== '0'"), what="the page connected and filled")
    wait_until(lambda: live.engine.held_notes() == (), what="silence before the test")


def js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def page_errors(driver) -> list[str]:
    return js(driver, "return [...document.querySelectorAll('#errors li')].map(li => li.textContent)")


# ---------------------------------------------------------------------------------------------- it loads
def test_the_page_loads_with_the_bundles_presets_macros_and_the_sound_as_a_picture(browser, session):
    live, server, web = session
    open_page(browser, web, live)
    spec = live.engine.control_spec
    names = js(browser, "return [...document.querySelectorAll('.preset')].map(b => b.dataset.name)")
    assert names == list(spec.presets)
    families = js(browser, "return [...document.querySelectorAll('.family')].map(f => f.dataset.family)")
    assert families == sorted({n.split("_")[0] for n in spec.presets}, key=[n.split("_")[0] for n in spec.presets].index)
    assert js(browser, "return document.querySelectorAll('#macros input[type=range]').length") == spec.macro_count
    assert js(browser, "return [...document.querySelectorAll('#method option')].map(o => o.value)") == list(spec.methods)
    assert js(browser, "return document.getElementById('write-tools').hidden") is True
    # The picture is drawn: not one colour.
    pixels = js(browser, """const c = document.getElementById('timbre');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return [c.width, c.height, new Set(Array.from(d.filter((_, i) => i % 4 === 0))).size]""")
    assert pixels[0] > 0 and pixels[1] > 0 and pixels[2] > 10
    # The status is shown: the current preset and the figures.
    wait_until(lambda: js(browser, "return document.getElementById('now-preset').textContent")
               == live.engine.controls.preset, what="the preset shown")
    # No script error on the page (Chromium's console, errors only).
    assert [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"] == []


# ---------------------------------------------------------------------------------------------- notes
def test_a_computer_key_and_a_click_on_a_key_sound_their_notes_at_their_pitch(tmp_path):
    """Its own engine, recording and logging: the take and the log say what the page played."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver = chromium_or_skip(width=1366, height=768)
    record, log = tmp_path / "take.wav", tmp_path / "take.json"
    try:
        with web_session(record=record, log_path=log) as (live, server, web):
            open_page(driver, web, live)
            ActionChains(driver).key_down("a").perform()  # A: C4 at octave 4
            wait_until(lambda: live.engine.held_notes() == (60,), what="note 60 held by the A key")
            wait_until(lambda: js(driver, "return +document.getElementById('fig-voices').textContent") >= 1,
                       what="the page showing a voice")
            assert js(driver, "return document.querySelector('.key[data-note=\"60\"]').classList.contains('down')")
            wait_until(lambda: live.engine.stats().samples > 0 and live.output_peak > 0.01, what="sound")
            import time

            time.sleep(0.8)  # long enough a note to measure its pitch in the take
            ActionChains(driver).key_up("a").perform()
            wait_until(lambda: live.engine.held_notes() == (), what="note 60 released")
            key = driver.find_element(By.CSS_SELECTOR, '.key[data-note="64"]')
            ActionChains(driver).click_and_hold(key).perform()
            wait_until(lambda: live.engine.held_notes() == (64,), what="note 64 held by a click")
            ActionChains(driver).release().perform()
            wait_until(lambda: live.engine.held_notes() == (), what="note 64 released")
    finally:
        driver.quit()
    played = [(e["address"], e["args"]) for e in json.loads(log.read_text())]
    assert played == [("/synth/note/on", [60, 100]), ("/synth/note/off", [60]),
                      ("/synth/note/on", [64, 100]), ("/synth/note/off", [64])]
    y, rate = sf.read(record, dtype="float32")
    first = int(np.flatnonzero(np.abs(y) > 1e-3)[0])
    seg = y[first + rate // 5 : first + rate // 2]
    assert abs(cents(f0_of(seg, rate=rate), midi_hz(60))) < 10


def test_several_fingers_hold_several_notes_at_once(browser, session):
    live, server, web = session
    open_page(browser, web, live)
    points = js(browser, """return [60, 64, 67].map(n => {
        const r = document.querySelector(`.key[data-note="${n}"]`).getBoundingClientRect();
        return {x: r.left + r.width / 2, y: r.bottom - 12, id: n};
    })""")
    browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 10})
    try:
        browser.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points[:1]})
        browser.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points[:2]})
        browser.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points})
        wait_until(lambda: live.engine.held_notes() == (60, 64, 67), what="a three-finger chord")
        browser.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": points[2:]})
        wait_until(lambda: live.engine.held_notes() == (60, 64), what="one finger lifted")
        browser.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        wait_until(lambda: live.engine.held_notes() == (), what="every finger lifted")
    finally:
        browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})


def test_octave_velocity_and_sustain_from_the_computer_keyboard(browser, session):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    live, server, web = session
    open_page(browser, web, live)
    notes = live.engine.stats().notes
    ActionChains(browser).send_keys("x").send_keys("v").key_down("w").perform()  # octave 5, velocity 110, C#5
    wait_until(lambda: live.engine.held_notes() == (73,), what="C#5 held")
    assert js(browser, "return [window.melsynth.state.octave, window.melsynth.state.velocity]") == [5, 110]
    ActionChains(browser).key_down(Keys.SPACE).key_up("w").perform()  # sustain holds it past its key-up
    wait_until(lambda: js(browser, "return document.querySelector('.key[data-note=\"73\"]').classList.contains('held')"),
               what="the key shown as sustained")
    assert live.engine.held_notes() == (73,)
    ActionChains(browser).key_up(Keys.SPACE).perform()
    wait_until(lambda: live.engine.held_notes() == (), what="released with the sustain")
    ActionChains(browser).send_keys("zc").perform()
    assert js(browser, "return [window.melsynth.state.octave, window.melsynth.state.velocity]") == [4, 100]
    assert live.engine.stats().notes == notes + 1


# ---------------------------------------------------------------------------------------------- the sound
def test_a_preset_chosen_on_the_page_reaches_the_engine_and_changes_the_picture(browser, session):
    from selenium.webdriver.common.by import By

    live, server, web = session
    open_page(browser, web, live)
    first = "bright" if live.engine.controls.preset != "bright" else "soft"
    browser.find_element(By.CSS_SELECTOR, f'.preset[data-name="{first}"]').click()
    wait_until(lambda: live.engine.controls.preset == first, what=f"preset {first}")
    before = wait_until(lambda: _drawn(browser, live), what=f"the picture of {first} drawn")
    browser.find_element(By.CSS_SELECTOR, '.preset[data-name="dark"]').click()
    wait_until(lambda: live.engine.controls.preset == "dark", what="preset dark")
    wait_until(lambda: js(browser, "return document.querySelector('.preset.current')?.dataset.name") == "dark",
               what="dark shown as current")
    after = wait_until(lambda: _drawn(browser, live), what="the picture of dark drawn")
    assert after[0] != before[0] and after[1] != before[1]  # other pixels, another image


def _drawn(browser, live):
    """(checksum, data URL) of the canvas once it shows the timbre the engine plays now (None before)."""
    from synth.web.picture import timbre_picture

    pixels = timbre_picture(live.engine.timbres.current, frames=live.engine.params.frames).pixels
    expected = 0
    for v in pixels:  # the page's own checksum of the bytes it drew
        expected = (expected * 31 + v) & 0xFFFFFFFF
    got, url = js(browser, "const c = document.getElementById('timbre'); return [+c.dataset.checksum, c.toDataURL()]")
    return (got, url) if got == expected else None


def test_an_xy_drag_with_corners_chosen_on_the_page_reaches_the_engine(browser, session):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    live, server, web = session
    open_page(browser, web, live)
    corners = ["soft", "hollow", "dark", "bright"]
    for key, name in zip("abcd", corners, strict=True):
        Select(browser.find_element(By.ID, f"corner-{key}")).select_by_value(name)
    wait_until(lambda: live.engine.controls.corners == tuple(corners), what="the corners chosen")
    pad = browser.find_element(By.ID, "xy")
    w, h = pad.size["width"], pad.size["height"]
    (ActionChains(browser).move_to_element_with_offset(pad, 0, 0).click_and_hold()
     .move_by_offset(-w // 4, h // 4).move_by_offset(w // 2 + w // 4 - 3, -h // 2 - h // 4 + 3).release().perform())
    wait_until(lambda: (lambda x, y: x > 0.95 and y > 0.95)(*live.engine.controls.xy), what="XY at the top right")
    x, y = live.engine.controls.xy
    assert live.engine.controls.preset == f"xy:{x:.3f},{y:.3f}"  # the sound is the pad's blend
    # The pad's path is in the take log: the corners, then positions moving up and right.
    played = [e for e in _log_entries(server.router.take_log) if e[0] in ("/synth/corners", "/synth/xy")]
    last_corners = max(i for i, e in enumerate(played) if e[0] == "/synth/corners")
    assert played[last_corners][1] == corners
    moves = [args for address, args in played[last_corners + 1 :]]
    assert len(moves) >= 2 and moves[-1][0] > 0.95 and moves[-1][1] > 0.95


def _log_entries(take_log) -> list[tuple[str, list]]:
    take_log._file.flush()  # (the lines are written as messages arrive; flushed here to read them mid-take)
    with open(take_log.lines_path, encoding="utf-8") as f:
        return [(e["address"], e["args"]) for e in map(json.loads, f)]


def test_morph_macros_method_gain_and_panic_reach_the_engine(browser, session):
    from selenium.webdriver.common.by import By

    live, server, web = session
    open_page(browser, web, live)
    set_value = """const el = arguments[0]; el.value = arguments[1];
        el.dispatchEvent(new Event(arguments[2], {bubbles: true}));"""
    js(browser, set_value, browser.find_element(By.ID, "morph-a"), "soft", "change")
    js(browser, set_value, browser.find_element(By.ID, "morph-b"), "hollow", "change")
    js(browser, set_value, browser.find_element(By.ID, "morph"), "0.25", "input")
    wait_until(lambda: live.engine.controls.preset == "morph:soft,hollow,0.250", what="the morph")
    js(browser, set_value, browser.find_element(By.CSS_SELECTOR, '#macros input[data-macro="1"]'), "1.5", "input")
    wait_until(lambda: live.engine.controls.macros[1] == 1.5, what="macro 1")
    method = [m for m in live.engine.control_spec.methods if m != live.engine.controls.method][0]
    js(browser, set_value, browser.find_element(By.ID, "method"), method, "change")
    wait_until(lambda: live.engine.controls.method == method, what=f"method {method}")
    js(browser, set_value, browser.find_element(By.ID, "gain"), "0.8", "input")
    wait_until(lambda: abs(live.engine.controls.gain - 0.8) < 1e-9, what="gain 0.8")
    js(browser, "window.melsynth.send('/synth/note/on', [67, 100])")
    wait_until(lambda: live.engine.held_notes() == (67,), what="a note to stop")
    browser.find_element(By.ID, "panic").click()
    wait_until(lambda: live.engine.sounding_voices == 0, what="panic")
    js(browser, set_value, browser.find_element(By.ID, "gain"), "0.5", "input")


def test_the_search_box_narrows_the_presets(browser, session):
    from selenium.webdriver.common.by import By

    live, server, web = session
    open_page(browser, web, live)
    browser.find_element(By.ID, "search").send_keys("ar")
    shown = js(browser, "return [...document.querySelectorAll('.preset')].filter(b => b.offsetParent).map(b => b.dataset.name)")
    assert shown == [n for n in live.engine.control_spec.presets if "ar" in n]


# ---------------------------------------------------------------------------------------------- errors
def test_a_bad_message_gets_the_engines_error_shown_on_the_page(browser, session):
    from selenium.webdriver.common.action_chains import ActionChains

    live, server, web = session
    open_page(browser, web, live)
    errors = server.router.errors
    # Up four octaves and play: C8 is far above the bundle's notes; the engine says so, the page shows it.
    ActionChains(browser).send_keys("xxxx").key_down("a").key_up("a").send_keys("zzzz").perform()
    wait_until(lambda: any("note 108 out of range 36..84" in e for e in page_errors(browser)),
               what="the engine's error on the page")
    js(browser, "window.melsynth.send('/synth/preset', ['nope'])")
    wait_until(lambda: any("unknown preset 'nope'" in e for e in page_errors(browser)), what="the preset error")
    wait_until(lambda: js(browser, "return +document.getElementById('fig-errors').textContent") >= errors + 2,
               what="the error count shown")
    assert live.engine.held_notes() == ()


# ---------------------------------------------------------------------------------------------- writing
def test_midi_learn_and_keeping_a_sound_only_with_web_write(browser, session, tmp_path):
    from selenium.webdriver.common.by import By

    from synth.bundle import load_bundle
    from synth.web.keep import PresetKeeper
    from synth.web.server import WebServer

    live, server, _ = session
    folder = shutil.copytree(synthetic_bundle_path(), tmp_path / "bundle")
    writer = WebServer(server.router, port=0, write=True, keeper=PresetKeeper(load_bundle(folder), live.engine))
    writer.start()
    try:
        open_page(browser, writer, live)
        assert js(browser, "return document.getElementById('write-tools').hidden") is False
        # serve without --midi: the button says why it is off, and the engine refuses a learn anyway.
        assert js(browser, "return document.getElementById('learn').disabled") is True
        js(browser, "window.melsynth.send('/synth/midi/learn', ['macro:2'])")
        wait_until(lambda: any("no MIDI input" in e for e in page_errors(browser)), what="the MIDI learn refusal")
        browser.find_element(By.ID, "keep-name").send_keys("from_the_page")
        browser.find_element(By.ID, "keep").click()
        wait_until(lambda: (folder / "presets" / "from_the_page.json").exists(), what="the preset file")
        wait_until(lambda: "kept as from_the_page" in js(browser, "return document.getElementById('keep-note').textContent"),
                   what="the page saying so")
        kept = load_bundle(folder).presets["from_the_page"]
        np.testing.assert_array_equal(kept.latent, live.engine.requested_latent)
    finally:
        writer.stop()
