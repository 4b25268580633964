"""MIDI in: a port (python-rtmidi: JACK, ALSA, CoreMIDI, Windows) whose messages become the engine's own
commands, as OSC's do.

- :mod:`synth.midi.mapping`: which controller moves what (the default and mapping files);
- :mod:`synth.midi.translate`: MIDI message -> checked engine commands (pedal, XY, learn);
- :mod:`synth.midi.port`: the port, its thread, and reopening a port that went away.
"""
