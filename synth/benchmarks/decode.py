"""Decoder timing: one latent -> one log-mel spectrogram, as the engine's decode worker does it."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["time_calls", "decode_timing", "estimate_error"]


def time_calls(fn, *, runs: int, warmup: int = 3) -> dict:
    """Call ``fn()`` ``warmup`` times untimed, then ``runs`` times; milliseconds p50 / p99 / mean / min."""
    for _ in range(warmup):
        fn()
    ms = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        fn()
        ms[i] = (time.perf_counter() - t0) * 1e3
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean()),
            "min": float(ms.min()), "runs": runs}


class AtHomeKey:
    """A keyboard bundle's decoder (it takes the key of each row) decoding at the bundle's home key: what one
    sounding key of a latent change costs, and the key whose decode the one-pitch figures compare with."""

    def __init__(self, decoder, *, key: int) -> None:
        self._decoder = decoder
        self.key = int(key)
        self.provider = getattr(decoder, "provider", "?")

    def decode(self, latents: np.ndarray) -> np.ndarray:
        return self._decoder.decode(latents, pitch=self.key)


def at_home_key(bundle, decoder):
    """``decoder`` itself for a one-pitch bundle; for a keyboard bundle, it decoding at the home key."""
    return decoder if bundle.keys is None else AtHomeKey(decoder, key=bundle.base_pitch)


def decode_timing(decoder, *, latent_shape, runs: int = 100, seed: int = 0) -> dict:
    """Time ``decoder.decode(z)`` (batch 1, a new random latent each call) -> :func:`time_calls` dict."""
    rng = np.random.default_rng(seed)
    latents = rng.standard_normal((runs + 3, 1, *latent_shape)).astype(np.float32)
    it = iter(latents)
    return time_calls(lambda: decoder.decode(next(it)), runs=runs)


def estimate_error(bundle, *, pairs: int = 8, steps: int = 8, seed: int = 0) -> dict:
    """How close the live engine's morph and macro estimates are to the exact decode, against keeping the
    old sound.

    Morphs: for ``pairs`` random preset pairs (a, b) and a fader moving a -> b in ``steps`` steps, each step's
    timbre is estimated from the previous step's exact one (what the engine sounds while the decoder works)
    and compared with the exact decode of the new position; the baseline is the previous step's exact timbre
    itself (what sounded before estimates existed). Also the same for one jump from a to the midpoint.
    Macros: ``pairs * 2`` random (preset, macro among the first 8, setting in -2..2) points, each moved by a
    quarter standard deviation (a fader step) and by one (a jump), estimated with the macro's slope at the
    mean latent as the engine does.
    Errors are mean absolute differences over every timbre value, in dB (unit scale times the dB range).
    """
    from synth.engine.decoding import decode_timbre
    from synth.engine.timbre import estimate_timbre
    from synth.engine.timbre_pipeline import estimate_along_recent

    names = list(bundle.presets)
    if len(names) < 2:
        raise ValueError("the morph estimate needs a bundle with at least two presets")
    params = bundle.params
    decoder = at_home_key(bundle, bundle.decoder(providers=["CPUExecutionProvider"]))
    db = params.db_max - params.db_min
    rng = np.random.default_rng(seed)

    def timbre(z):
        t, error, _ = decode_timbre(decoder, z.reshape(bundle.latent_shape).astype(np.float32), params=params)
        if t is None:
            raise RuntimeError(error)
        return t

    def err(x, y):
        return float(np.mean(np.concatenate([np.abs(getattr(x, p) - getattr(y, p)).ravel()
                                             for p in ("held", "sustain", "release")]))) * db

    step_est, step_old, jump_est, jump_old = [], [], [], []
    for _ in range(pairs):
        a, b = rng.choice(len(names), size=2, replace=False)
        za = np.asarray(bundle.presets[names[a]].latent, dtype=np.float64)
        zb = np.asarray(bundle.presets[names[b]].latent, dtype=np.float64)
        ta, tb = timbre(za), timbre(zb)
        prev = ta
        for k in range(1, steps + 1):
            t = k / steps
            exact = timbre((1 - t) * za + t * zb)
            guess = estimate_timbre(prev, [(-1.0 / steps, ta), (1.0 / steps, tb)])
            step_est.append(err(guess, exact))
            step_old.append(err(prev, exact))
            prev = exact
        mid = timbre(0.5 * za + 0.5 * zb)
        jump_est.append(err(estimate_timbre(ta, [(-0.5, ta), (0.5, tb)]), mid))
        jump_old.append(err(ta, mid))
    out = {
        "morph_step_estimate_error_db": float(np.mean(step_est)),
        "morph_step_stale_error_db": float(np.mean(step_old)),
        "morph_jump_estimate_error_db": float(np.mean(jump_est)),
        "morph_jump_stale_error_db": float(np.mean(jump_old)),
        "morph_pairs": pairs, "morph_steps": steps,
    }
    # A fader on one latent coordinate: steps of a quarter of that coordinate's spread over the presets;
    # each point estimated along the previous two exact decodes by the engine's own estimator, against the
    # old sound.
    spread = np.stack([np.asarray(p.latent, dtype=np.float64).reshape(-1) for p in bundle.presets.values()]).std(0)
    sweep_est, sweep_old = [], []
    for _ in range(2 * pairs):
        i = int(rng.integers(0, spread.size))
        z = np.asarray(bundle.presets[names[int(rng.integers(0, len(names)))]].latent, dtype=np.float64).reshape(-1)
        step = np.zeros_like(z)
        step[i] = 0.25 * max(float(spread[i]), 1e-3)
        t_a, t_b, t_c = timbre(z), timbre(z + step), timbre(z + 2 * step)
        guess = estimate_along_recent([(z, t_a), (z + step, t_b)], z + 2 * step)
        if guess is None:
            raise RuntimeError("the engine's estimator refused a point on the line of its two decodes")
        sweep_est.append(err(guess, t_c))
        sweep_old.append(err(t_b, t_c))
    out["sweep_step_estimate_error_db"] = float(np.mean(sweep_est))
    out["sweep_step_stale_error_db"] = float(np.mean(sweep_old))
    macros = bundle.macros
    if macros is None or not len(macros.stds):
        return out
    count = min(8, len(macros.stds))
    mean = np.asarray(macros.mean, dtype=np.float64).reshape(-1)
    dirs = np.asarray(macros.components, dtype=np.float64).reshape(len(macros.stds), -1)[:count]
    dirs = dirs * np.asarray(macros.stds, dtype=np.float64)[:count, None]
    t_mean = timbre(mean)
    slopes = [timbre(mean + d) for d in dirs]
    for move in (0.25, 1.0):
        est, old = [], []
        for _ in range(2 * pairs):
            k = int(rng.integers(0, count))
            base = np.asarray(bundle.presets[names[int(rng.integers(0, len(names)))]].latent, dtype=np.float64)
            z0 = base.reshape(-1) + float(rng.uniform(-2.0, 2.0)) * dirs[k]
            t0, t1 = timbre(z0), timbre(z0 + move * dirs[k])
            est.append(err(estimate_timbre(t0, [(move, slopes[k]), (-move, t_mean)]), t1))
            old.append(err(t0, t1))
        tag = "step" if move < 1 else "jump"
        out[f"macro_{tag}_estimate_error_db"] = float(np.mean(est))
        out[f"macro_{tag}_stale_error_db"] = float(np.mean(old))
    return out
