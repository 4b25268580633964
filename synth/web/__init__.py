"""The browser control surface: ``melsynth serve --web`` serves a page that plays the engine.

One idea a file: :mod:`.limits` (how much a page may send),
:mod:`.access` (who may open the page and its socket: the per-run token, the Origin, the allowed addresses),
:mod:`.messages` (the JSON frames in and out), :mod:`.picture` (the decoded timbre as a small image),
:mod:`.clients` (one connection's bounded outbox), :mod:`.feed` (what the page is told ten times a second),
:mod:`.keep` (keeping the current sound as a preset, with ``--web-write`` only), :mod:`.server` (the aiohttp
server on its own thread and event loop), and ``static/``: the page itself, plain HTML, CSS and JavaScript.
:mod:`.browser` and :mod:`.screenshots` drive headless Chromium (the tests, and the pictures in docs/).

Every message the page sends goes through the same :class:`~synth.control.router.ControlRouter` as OSC, so
``--log-osc`` records what the page played. Nothing here imports aiohttp at package import.
"""
