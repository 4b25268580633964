"""Measuring code shared by ``bench/`` (the long runs behind docs/BENCHMARKS.md), ``melsynth bench`` (the
quick JSON figures) and the reliability tests (the same fuzzer and soak driver, run shorter).

One file per idea: :mod:`~synth.benchmarks.fuzz` (malformed OSC packets), :mod:`~synth.benchmarks.soak`
(random valid control at a steady rate against a live engine), :mod:`~synth.benchmarks.decode` (decoder
timing), :mod:`~synth.benchmarks.live` (control latency and voice count on the live engine),
:mod:`~synth.benchmarks.machine` (what the figures were measured on). Nothing here imports TensorFlow.
"""
