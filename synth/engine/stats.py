"""The engine's figures as typed, immutable objects: what :meth:`Engine.stats` returns.

Built on request from the counters the engine keeps anyway (plain ints and floats the synthesis thread
increments), never per frame: asking costs the caller a few attribute reads and one small object, and the
synthesis thread nothing. Another thread may ask while the engine plays; each figure is then as of some
moment of the call, not all of one frame.
"""

from __future__ import annotations

import dataclasses

__all__ = ["EngineStats", "TimbreStats"]


@dataclasses.dataclass(frozen=True)
class TimbreStats:
    """Figures of the timbre pipeline (:class:`~synth.engine.timbre_pipeline.TimbrePipeline`): what became
    of the latent changes.

    Attributes
    ----------
    latent_changes : int  changes of the latent that asked for a new timbre
    decode_errors : int  decodes that failed (the previous sound was kept)
    decode_ms : float  median of the recent whole-note decode times, ms (0.0 before any)
    tile_ms : float  median of the recent tile decode times, ms (0.0 before any)
    tiles : int  tiles spliced into what the voices play (each ahead of its whole note)
    tiles_decoded : int  tiles the decode worker decoded
    keys_first : int  latent changes of a keyboard bundle sounded at the playing keys before the others were
        decoded
    coalesced : int  requests superseded by a newer one before they were decoded (newest wins)
    inline_decodes : int  decodes a live engine made in the synthesis thread instead of on its worker (a fast
        decoder's; 0 offline, where every decode is inline by design)
    decodes_inline : bool  whether a live engine now decodes in the synthesis thread instead of on its worker
        (False offline)
    cache_hits : int  timbres found in the cache (presets, recent latents) instead of decoded
    timbre_estimates : int  timbres estimated from decoded ones while the exact decode ran
    keys_estimated : int  latent changes of a keyboard bundle sounded at some of the sounding keys first, the
        voices at the others moved from the nearest of them until their own keys were decoded
    """

    latent_changes: int
    decode_errors: int
    decode_ms: float
    tile_ms: float
    tiles: int
    tiles_decoded: int
    keys_first: int
    coalesced: int
    inline_decodes: int
    decodes_inline: bool
    cache_hits: int
    timbre_estimates: int
    keys_estimated: int = 0


@dataclasses.dataclass(frozen=True)
class EngineStats:
    """Figures of one :class:`~synth.engine.Engine` since it was built.

    Attributes
    ----------
    frames : int  frames made, on the model's frame clock
    samples : int  output samples handed out (the engine's clock, at the output rate)
    voices : int  voices sounding now
    notes : int  notes started
    voices_stolen : int  voices taken from a sounding note for a new one (the oldest, faded out)
    events : int  scheduled events applied
    late_events : int  events scheduled for a sample already made (applied at the next frame instead)
    limited_frames : int  blocks handed out in which the limiter turned the level down
    nonfinite_frames : int  blocks handed out that held a NaN or an infinity (silenced)
    timbres : TimbreStats  the timbre pipeline's figures
    """

    frames: int
    samples: int
    voices: int
    notes: int
    voices_stolen: int
    events: int
    late_events: int
    limited_frames: int
    nonfinite_frames: int
    timbres: TimbreStats
