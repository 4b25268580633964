"""Measuring code shared by ``melsynth bench`` (the quick JSON figures, and the full run behind
docs/BENCHMARKS.md), the bench/ entry points and the reliability tests (the same fuzzer and soak driver, run
shorter). It ships with the package: nothing here needs the source checkout, and nothing imports TensorFlow
or the training package (their benchmarks are :mod:`training.benchmarks`).

One file per idea: :mod:`~synth.benchmarks.fuzz` (malformed OSC packets), :mod:`~synth.benchmarks.soak`
(random valid control at a steady rate against a live engine), :mod:`~synth.benchmarks.decode` (decoder
timing), :mod:`~synth.benchmarks.live` (control latency and voice count on the live engine),
:mod:`~synth.benchmarks.pitch` (the pitch of rendered notes), :mod:`~synth.benchmarks.machine` (what the
figures were measured on), :mod:`~synth.benchmarks.synthetic_bundle` (a tiny real bundle for tests, and for
benchmarks when presets/default is not there), :mod:`~synth.benchmarks.common` (what the suites share: the
bundle to measure, a JACK dummy server, output), :mod:`~synth.benchmarks.report` (docs/BENCHMARKS.md from a
run's result).

:mod:`synth.benchmarks.suites` holds the benchmarks themselves, one module each with its ``run_*_bench``
function and its command line (``main``), which bench/*.py run.
"""
