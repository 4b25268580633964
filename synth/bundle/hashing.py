"""SHA-256 digests of bundle files, and the bundle hash that ties presets to one bundle.

The bundle hash is ``sha256(bytes.fromhex(decoder_sha256) + bytes.fromhex(encoder_sha256))`` as lowercase
hex: it changes whenever either network changes (a re-export, a retrained run), and not when bundle.json's
descriptive fields (metrics, parity notes) or its presets change, so presets stay valid for exactly the
networks whose latent space they were made in.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["sha256_bytes", "bundle_hash_of", "is_sha256"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256_bytes(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def is_sha256(value: object) -> bool:
    """True for a 64-character lowercase hex string."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def bundle_hash_of(*, decoder_sha256: str, encoder_sha256: str) -> str:
    """The bundle hash: SHA-256 over the decoder's then the encoder's raw 32-byte digests."""
    return hashlib.sha256(bytes.fromhex(decoder_sha256) + bytes.fromhex(encoder_sha256)).hexdigest()
