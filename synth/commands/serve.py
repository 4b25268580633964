"""``melsynth serve``: the real-time engine, OSC in and audio out, until Ctrl-C (or ``--duration``).

With no audio output device (a headless machine), it says so on one line and plays into the null output
(paced by the clock) while recording to a new ``melsynth-take-YYYYMMDD-HHMMSS.wav``, so the result can still
be heard afterwards (a new name each run: ``make run`` once replaced the previous take every time).

Neither ``--record`` nor ``--log-osc`` replaces an existing file without ``--force``, and even with it only a
regular file (never a symbolic link, a device, a FIFO or a folder: :mod:`synth.outputs`); the two may not
name the same file. All of that is refused before the engine starts.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synth.host.stats import LiveStats

__all__ = ["add_arguments", "run"]


# The longest --duration: a year, far below what a thread's wait can take (threading.TIMEOUT_MAX; 1e10 s
# overflowed it after the engine had started).
MAX_DURATION = 365 * 24 * 3600.0


def _duration(text: str) -> float:
    value = _positive_float(text)
    if value > MAX_DURATION:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_DURATION:g} seconds (a year), got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from synth.control.vocabulary import DEFAULT_PORT
    from synth.inversion.base import DEFAULT_METHOD, METHODS

    parser.add_argument("--bundle", required=True, help="model bundle folder (e.g. presets/default)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"UDP port for OSC (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; others need --allow)")
    parser.add_argument("--allow", nargs="+", default=[], metavar="ADDR", help="accept OSC only from these addresses")
    parser.add_argument(
        "--output", choices=("auto", "sounddevice", "null"), default="auto",
        help="audio output: a sound device, null (no device, paced by the clock), or auto (default: a device if "
        "there is one, else null with a recording)",
    )
    parser.add_argument("--device", default=None, help="output device index or name (see melsynth devices)")
    parser.add_argument("--samplerate", type=int, default=None, help="output rate in Hz (default: the device's, or 48000)")
    parser.add_argument("--blocksize", type=int, default=256, help="samples per audio block (default 256)")
    parser.add_argument("--ahead", type=int, default=3,
                        help="blocks rendered ahead of the output on a calm machine (default 3)")
    parser.add_argument("--max-ahead", type=int, default=None, metavar="BLOCKS",
                        help="the widest the margin grows after a near-miss (default max(8, --ahead); equal to "
                             "--ahead: a fixed margin)")
    parser.add_argument("--onset-ahead", type=int, default=None, metavar="BLOCKS",
                        help="blocks a note coming onto silence waits (1..--ahead, default --ahead minus 1): the "
                             "silence rendered ahead is taken back that far, and the margin refills to --ahead as "
                             "the note plays. 1 is the low-latency setting: a 5.3 ms margin for the attack only")
    parser.add_argument("--idle-ahead", type=int, default=None, metavar="BLOCKS",
                        help="blocks rendered ahead while nothing sounds, taken back when a note comes, so a "
                             "stall then costs no dropout and a note no latency (default max(24, --max-ahead))")
    parser.add_argument("--record", default=None, metavar="FILE.wav", help="record everything played to this WAV file")
    parser.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD, help="inversion method")
    parser.add_argument("--raw-levels", action="store_true",
                        help="each timbre at the level its decode has (default: presets, morphs and latents at one "
                             "loudness)")
    parser.add_argument("--preset", default=None, help="preset sounding at start (default: the bundle's first)")
    parser.add_argument("--voices", type=int, default=16, help="polyphony (default 16)")
    parser.add_argument("--gain", type=float, default=None, help="output gain before the limiter (default 0.5)")
    parser.add_argument("--log-osc", default=None, metavar="FILE.json", help="write every valid message as a score")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --record or --log-osc file (a regular file only)")
    parser.add_argument("--midi", nargs="?", const="", default=None, metavar="PORT",
                        help="MIDI in: without PORT a virtual port (melsynth:midi_in under JACK, melsynth in ALSA) "
                             "for a DAW or keyboard to connect to; with PORT that port, by number or name "
                             "(see melsynth devices)")
    parser.add_argument("--midi-map", default=None, metavar="FILE.json",
                        help="a MIDI mapping file (CCs, bend range, channel; see docs/OSC.md)")
    parser.add_argument("--duration", type=_duration, default=None, metavar="SECONDS",
                        help=f"stop after this long (at most {MAX_DURATION:g} s)")
    from synth.web.limits import DEFAULT_WEB_PORT

    parser.add_argument("--web", nargs="?", type=int, const=DEFAULT_WEB_PORT, default=None, metavar="PORT",
                        help=f"serve a page that plays the engine, on PORT (default {DEFAULT_WEB_PORT}); serve prints "
                             "its address, with this run's token")
    parser.add_argument("--web-host", default=None, metavar="ADDR",
                        help="address the page is served on (default 127.0.0.1; others need --allow, which then "
                             "names the machines that may open it)")
    parser.add_argument("--web-write", action="store_true",
                        help="the page may keep the current sound as a preset (a file in the bundle) and learn MIDI")


def _print_figures(stats: LiveStats, server, recorded, log_path, midi=None) -> None:
    print(
        f"melsynth: played {stats.seconds:.1f} s: {stats.engine.notes} notes, {stats.underflows} underflows "
        f"({stats.underflows_startup} at start-up, {stats.underflows_idle} idle, "
        f"{stats.underflows_playing} playing), {stats.device_xruns} device xruns; control latency p50 {stats.latency_ms:.1f} ms, "
        f"p99 {stats.latency_ms_p99:.1f} ms beyond the {stats.device_latency_ms:.1f} ms device buffer "
        f"({stats.latency_count} events; exact p99 {stats.exact_latency_ms_p99:.1f} ms); "
        f"decode {stats.engine.timbres.decode_ms:.1f} ms; "
        f"{server.router.messages} messages, {server.router.errors} errors, {server.router.dropped} dropped"
    )
    if stats.near_misses:
        print(f"melsynth: the margin ahead of the output grew from {stats.buffer_ms_base:.1f} ms to at most "
              f"{stats.buffer_ms_widest:.1f} ms after {stats.near_misses} near-misses "
              f"({stats.buffer_ms:.1f} ms at the end)")
    if midi is not None:
        c = midi.counters()
        print(f"melsynth: MIDI {midi.port_name}: {c['midi_messages']} messages, {c['midi_applied']} applied, "
              f"{c['midi_ignored']} ignored, {c['midi_errors']} bad; port lost {c['midi_port_lost']} times, "
              f"reopened {c['midi_port_reopened']}")
    if stats.engine.timbres.decode_errors:
        print(f"melsynth: {stats.engine.timbres.decode_errors} decodes failed; the previous sound was kept")
    if recorded is not None:
        print(f"melsynth: recorded {recorded}")
    if log_path is not None:
        n = server.router.take_log.count
        print(f"melsynth: OSC log {log_path} ({n} message{'' if n == 1 else 's'}; `melsynth render --score` plays it "
              "again, `melsynth presets save --score` keeps a sound of it as a preset)")


def run(args: argparse.Namespace) -> int:
    from synth.bundle.runtime import map_large_blocks
    from synth.commands.bundle_loading import load_bundle_for_command as load_bundle
    from synth.host.recorder import Recorder
    from synth.host.session import LiveSession

    _check_ranges(args)
    _check_web(args)
    map_large_blocks()  # before the bundle and the engine take their memory: see its docstring
    bundle = load_bundle(args.bundle)
    mapping = _midi_mapping(args)
    output, device, record = _resolve_output(args)
    _check_take_files(args, record)
    rate = args.samplerate if args.samplerate is not None else (int(device["default_samplerate"]) if device else 48000)
    channels = min(2, device["channels"]) if device else 1

    session = LiveSession()  # from here on a failure undoes whatever was built, newest first
    try:
        # Opened before the (slow) engine is built, so an unwritable path is reported at once.
        recorder = session.own("recorder", Recorder(record, rate=rate, force=args.force,
                                                    inputs=(args.bundle, args.midi_map)) if record else None)
        engine = session.own("engine", _build_engine(args, bundle, rate))
        live = session.own("live", _build_live(args, engine, output, device, rate, channels, recorder))
        server = session.own("server", _build_server(args, live))
        web = session.own("web", _build_web(args, bundle, engine, server))
        _interrupt_on_signals()
        midi = session.own("midi", _build_midi(args, mapping, engine, live, server))
    except BaseException:
        session.abort()
        raise
    session.start(between=lambda: _finish_on_signals(live))
    if midi is not None:
        print(f"melsynth: MIDI in on {midi.port_name} ({midi.api_name})", flush=True)
    _print_banner(args, engine, live, server, rate, record)
    if web is not None:
        print(f"melsynth: play it in a browser: {web.url}"
              + (" (it may keep presets and learn MIDI)" if web.write else ""), flush=True)
    _wait(live, args.duration)
    stats = session.stop()
    if web is not None:
        c = web.counters()
        print(f"melsynth: the page: {c['connections']} connections, {c['frames']} messages, {c['refused']} "
              f"refused, {c['rate_dropped']} over the rate, {c['cut_off']} cut off")
    log_path, log_error = _write_log(server)
    _exit_without_portaudio(_closing_report(stats, live, server, log_path, midi, log_error))


def _write_log(server) -> tuple[Path | None, str | None]:
    """Write the take log once the engine has stopped: (its path, or None; what went wrong, or None)."""
    from synth.errors import ParameterError

    try:
        return server.write_log(), None
    except ParameterError as exc:
        return None, str(exc)


def _check_ranges(args: argparse.Namespace) -> None:
    from synth.engine.engine import OUTPUT_RATES
    from synth.errors import ParameterError

    if args.samplerate is not None and not OUTPUT_RATES[0] <= args.samplerate <= OUTPUT_RATES[1]:
        # Here, before the recording is opened at that rate (soundfile's refusal would name no flag).
        raise ParameterError(f"--samplerate must be {OUTPUT_RATES[0]}..{OUTPUT_RATES[1]} Hz, got {args.samplerate}")

    if not 16 <= args.blocksize <= 8192:
        raise ParameterError(f"--blocksize must be 16..8192, got {args.blocksize}")
    if not 0 <= args.port <= 65535:
        raise ParameterError(f"--port must be 0..65535, got {args.port}")


def _check_web(args: argparse.Namespace) -> None:
    """The page's flags make sense together (before anything starts)."""
    from synth.errors import ParameterError
    from synth.web.access import allowed_peers

    if args.web is None:
        for flag, given in (("--web-host", args.web_host is not None), ("--web-write", args.web_write)):
            if given:
                raise ParameterError(f"{flag} needs --web")
        return
    if not 0 <= args.web <= 65535:
        raise ParameterError(f"--web port must be 0..65535, got {args.web}")
    allowed_peers(args.web_host or "127.0.0.1", args.allow)  # a non-loopback address without --allow: refused


def _build_web(args: argparse.Namespace, bundle, engine, server):
    """The page's server, its port bound but not started (None without --web); it shares OSC's router."""
    if args.web is None:
        return None
    from synth.web.keep import PresetKeeper
    from synth.web.server import WebServer

    return WebServer(server.router, host=args.web_host or "127.0.0.1", port=args.web, allow=args.allow,
                     write=args.web_write, keeper=PresetKeeper(bundle, engine) if args.web_write else None)


def _midi_mapping(args: argparse.Namespace):
    """The MIDI mapping for ``--midi`` (``--midi-map``'s file or the default), or None without ``--midi``."""
    from synth.errors import ParameterError

    if args.midi is not None:
        from synth.midi.mapping import MidiMapping, load_mapping

        return load_mapping(args.midi_map) if args.midi_map else MidiMapping()
    if args.midi_map:
        raise ParameterError("--midi-map needs --midi")
    return None


def _resolve_output(args: argparse.Namespace) -> tuple[str, dict | None, str | None]:
    """(output kind, device or None, recording path or None), saying on one line when it falls back."""
    from synth.host.output import choose_output

    choice = choose_output(args.output, device=args.device, record=args.record)
    if choice.fallback:
        print(f"melsynth: {choice.fallback}: playing to the null output and recording to {choice.record}")
    return choice.kind, choice.device, choice.record


def _check_take_files(args: argparse.Namespace, record: str | None) -> None:
    """Refuse, before the engine starts, a --record or --log-osc path that may not be written: in a folder that
    does not exist; an existing file without --force; with it, anything but a regular file; a file of the
    bundle; the same file twice (the log, written last, once replaced the recording by 92 bytes of JSON)."""
    import os

    from synth.errors import OutputError
    from synth.outputs import check_output_file, check_take_folder

    log = args.log_osc
    if record is not None and log is not None and (
        Path(record).resolve() == Path(log).resolve()
        or (os.path.exists(record) and os.path.exists(log) and os.path.samefile(record, log))  # hard links
    ):
        raise OutputError(f"--record {record} and --log-osc {log} are the same file: name two files")
    inputs = (args.bundle, args.midi_map)
    for path, what in ((record, "the recording"), (log, "the OSC log")):
        if path is not None:
            check_take_folder(path, what=what)
            check_output_file(path, force=args.force, what=what, inputs=inputs)


# What the engine's errors call its settings, and the flags of serve that set them: a user who typed
# `--ahead 0` is told about --ahead, not about a constructor's ahead_blocks.
_FLAG_OF = {"ahead_blocks": "--ahead", "max_ahead_blocks": "--max-ahead", "idle_ahead_blocks": "--idle-ahead",
            "onset_blocks": "--onset-ahead", "blocksize": "--blocksize", "max voices": "--voices",
            "output rate": "--samplerate", "gain": "--gain"}


def _in_flag_terms(exc):
    """The engine's ParameterError ``exc`` again, each setting's name in it replaced by its flag."""
    import re

    from synth.errors import ParameterError

    text = str(exc)
    for name, flag in _FLAG_OF.items():
        text = re.sub(rf"(?<![\w-]){re.escape(name)}\b", flag, text)
    return ParameterError(text)


def _build_engine(args: argparse.Namespace, bundle, rate: int):
    from synth.engine import Engine, EngineOptions, LiveDecoding
    from synth.engine.engine import DEFAULT_GAIN
    from synth.errors import ParameterError

    options = EngineOptions(
        output_rate=rate,
        method=args.method,
        max_voices=args.voices,
        gain=DEFAULT_GAIN if args.gain is None else args.gain,
        initial_preset=args.preset,
        match_loudness=not args.raw_levels,
    )
    try:
        return Engine(bundle, options, decoding=LiveDecoding())
    except ParameterError as exc:
        raise _in_flag_terms(exc) from None


def _build_live(args: argparse.Namespace, engine, output: str, device, rate: int, channels: int, recorder):
    from synth.errors import ParameterError
    from synth.host.live_engine import LiveEngine

    try:
        return LiveEngine(
            engine, output=output, device=device, blocksize=args.blocksize, ahead_blocks=args.ahead,
            max_ahead_blocks=args.max_ahead, idle_ahead_blocks=args.idle_ahead, onset_blocks=args.onset_ahead,
            record=recorder, channels=channels,
        )
    except ParameterError as exc:
        raise _in_flag_terms(exc) from None


def _build_server(args: argparse.Namespace, live):
    from synth.osc.server import OscServer

    return OscServer(live, host=args.host, port=args.port, allow=args.allow, log_path=args.log_osc,
                     log_force=args.force, log_inputs=(args.bundle, args.midi_map))


def _raise_interrupt(signum, frame):  # SIGTERM stops as cleanly as Ctrl-C
    raise KeyboardInterrupt


def _interrupt_on_signals() -> None:
    """Until the engine runs: SIGTERM and Ctrl-C raise KeyboardInterrupt; SIGUSR1 dumps the stacks."""
    import faulthandler
    import signal

    signal.signal(signal.SIGTERM, _raise_interrupt)
    # Ctrl-C too, explicitly: a process started with SIGINT ignored (a background job of a script, or a
    # parent that ignores it, as the test suite's process came to) would otherwise never see it.
    signal.signal(signal.SIGINT, _raise_interrupt)
    # `kill -USR1 PID` prints every thread's stack to stderr: to see where a stuck server is.
    faulthandler.register(signal.SIGUSR1, all_threads=True)


def _build_midi(args: argparse.Namespace, mapping, engine, live, server):
    """The MIDI input for ``--midi`` (not started yet; None without it), attached to the OSC server's router
    (for MIDI learn)."""
    if mapping is None:
        return None
    from synth.midi.port import MidiInput
    from synth.midi.translate import MidiTranslator

    midi = MidiInput(live.submit, MidiTranslator(engine.control_spec, mapping), port=args.midi or None,
                     on_command=server.router.log_command,
                     on_event=lambda line: print(f"melsynth: {line}", flush=True),
                     priority=lambda: live.priorities.control if live.realtime else None)
    server.router.midi = midi
    return midi


def _finish_on_signals(live) -> None:
    """Once the engine runs: Ctrl-C and SIGTERM end the run through ``live.request_stop()``."""
    import signal

    # From here on Ctrl-C and SIGTERM end the run gracefully wherever the main thread is (a signal arriving
    # while it prints would otherwise escape as KeyboardInterrupt, seen in the suite): the wait returns.
    def _finish(signum, frame):
        live.request_stop()

    signal.signal(signal.SIGTERM, _finish)
    signal.signal(signal.SIGINT, _finish)


def _print_banner(args: argparse.Namespace, engine, live, server, rate: int, record) -> None:
    """The two start-up lines: where OSC is heard and what the bundle is; the output and its margin."""
    allow = f", accepting {', '.join(sorted(server.allow))}" if server.allow else ""
    figures = live.stats()
    print(
        f"melsynth: listening for OSC on {args.host}:{server.port}{allow}; bundle {args.bundle} "
        f"(latent {engine.control_spec.latent_size}, base pitch {engine.base_pitch}, {len(engine.control_spec.presets)} presets, "
        f"decoder on {engine.provider})"
    )
    print(
        f"melsynth: output {live.output.device_name} at {rate} Hz, {args.blocksize}-sample blocks, "
        f"{figures.buffer_ms_base:.1f} ms ahead (up to {live.margin.max_blocks * args.blocksize / rate * 1e3:.1f} "
        f"ms after a near-miss, {live.idle_blocks * args.blocksize / rate * 1e3:.1f} ms while nothing sounds, "
        f"{figures.buffer_ms_onset:.1f} ms for a note onto silence); "
        f"method {args.method}"
        + (f"; recording {record}" if record else "")
        + ("" if args.duration else "; Ctrl-C to stop"),
        flush=True,
    )


def _wait(live, duration: float | None) -> None:
    try:
        # One wait, no polling: this thread is not real-time, and a thread of ours that an ordinary process
        # preempts while it holds the GIL holds up the real-time ones. Signals still interrupt the wait.
        live.wait(duration)
    except KeyboardInterrupt:
        pass


def _closing_report(stats: LiveStats, live, server, log_path, midi, log_error: str | None = None) -> int:
    """The closing figures and errors, once everything has stopped; returns the exit code."""
    import sys

    _print_figures(stats, server, live.recorded_path, log_path, midi)
    code = 0  # Ctrl-C is the normal way to stop a server
    if live.recorder is not None and live.recorder.gap_frames:
        print(f"melsynth: the disk fell behind the recording: {live.recorder.gap_frames / live.rate:.1f} s of it "
              "are silence where the audio could not be kept", file=sys.stderr)
    if live.recorder is not None and live.recorder.error:
        # An error is an exit 1 even though part of the take is kept: a full disk once exited 0.
        print(f"melsynth: error: the recording {live.recorder.error}", file=sys.stderr)
        code = 1
    if log_error:
        print(f"melsynth: error: {log_error}", file=sys.stderr)
        code = 1
    if live.failure:
        print(f"melsynth: error: {live.failure}", file=sys.stderr, flush=True)
        code = 1
    return code


def _exit_without_portaudio(code: int) -> None:
    """Flush and leave the process with ``code``, at once; never returns."""
    import os
    import sys

    # Everything is written. PortAudio's exit handler (Pa_Terminate) aborts the process, or blocks forever,
    # when a JACK server it saw has died: seen after a detected failure and after Ctrl-C or SIGTERM soon after
    # the server stopped, and once (in the test suite, after the JACK fault tests) with the null output too,
    # since PortAudio probes JACK when sounddevice is imported. Leave without running it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
