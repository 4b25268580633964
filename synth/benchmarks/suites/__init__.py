"""The benchmarks, one module each: a ``run_*_bench`` function returning JSON-ready figures, and ``main``, its
command line (bench/bench_<name>.py runs it).

:mod:`~synth.benchmarks.suites.decode` (decode time), :mod:`~synth.benchmarks.suites.inversion` (the
streaming methods against librosa.griffinlim), :mod:`~synth.benchmarks.suites.engine` (control latency,
voices, memory), :mod:`~synth.benchmarks.suites.render` (offline rendering speed),
:mod:`~synth.benchmarks.suites.fuzz` (the long OSC fuzz), :mod:`~synth.benchmarks.suites.soak` (the hour's
soak), :mod:`~synth.benchmarks.suites.jack_latency` (latency through JACK, measured outside the engine).
What needs TensorFlow or the training package (the Keras decode baseline, real notes of a features folder,
training throughput) is :mod:`training.benchmarks`, which the callers hand in.
"""
