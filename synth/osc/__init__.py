"""OSC over UDP: the server (packets in, replies out) and well-formed packets as bytes. The address space it
speaks is the control vocabulary's (:mod:`synth.control.vocabulary`)."""
