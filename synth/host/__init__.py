"""The real-time host around the engine: what playing live adds to the deterministic :mod:`synth.engine`.

:mod:`~synth.host.live_engine` runs the engine on a synthesis thread a few blocks ahead of an output
(:mod:`~synth.host.output`: the sound card's C callback or the null clock) through a ring
(:mod:`~synth.host.ring`), widening its margin after near-misses (:mod:`~synth.host.margin`), its threads at
real-time priorities below the audio callback's (:mod:`~synth.host.priority`), a take written by its own thread
(:mod:`~synth.host.recorder`), run-long timings in fixed bins (:mod:`~synth.host.histogram`);
:mod:`~synth.host.session` owns a run's parts and the order they start, stop and are cleaned up in. The engine
never imports this package (tests/test_layout.py): offline rendering drives it without any of this.
"""
