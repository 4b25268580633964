"""Keeping the sound the page plays now as a preset of the bundle (``serve --web-write`` only).

The preset is the latent the engine handed its decoder last (``Engine.requested_latent``: what the
controls, from any source, have made), written to ``<bundle>/presets/<name>.json`` as ``melsynth presets save``
does; it is among the presets from the next start.
"""

from __future__ import annotations

import time
from pathlib import Path

from synth.bundle.presets import save_preset, validate_preset_name
from synth.errors import ParameterError, PresetError

__all__ = ["PresetKeeper"]


class PresetKeeper:
    """Write presets of ``bundle`` from what ``engine`` plays."""

    def __init__(self, bundle, engine) -> None:
        self.bundle = bundle
        self.engine = engine
        self.kept: list[Path] = []

    def keep(self, name) -> Path:
        """Save the current sound as preset ``name`` (never over an existing one); its path. Raises
        ParameterError with the reason (a bad or taken name, a bundle folder that cannot be written)."""
        try:
            validate_preset_name(name)
            if name in self.engine.control_spec.presets:
                raise PresetError(f"preset {name!r} exists: choose another name")
            preset = self.bundle.make_preset(name, self.engine.requested_latent, source={
                "kept_from": "the page (melsynth serve --web-write)",
                "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "controls": self.engine.controls.preset,
            })
            path = save_preset(self.bundle, preset, overwrite=False)
        except PresetError as exc:
            raise ParameterError(str(exc)) from None
        except OSError as exc:
            raise ParameterError(f"cannot write preset {name!r} into {self.bundle.path}: "
                                 f"{exc.strerror or exc}") from None
        self.kept.append(path)
        return path
