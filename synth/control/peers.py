"""Which machines may send control messages: the ``--allow`` rule every transport (OSC, the page) keeps.

A listening address other than loopback lets any machine on the network play the engine, so it needs an
``--allow`` list; where a list is given, only those addresses are heard. Addresses are compared in one
spelling: an IPv4 address mapped into IPv6 (``::ffff:127.0.0.1``, what a socket bound to ``::`` reports) is
the IPv4 one, so ``--host :: --allow 127.0.0.1`` hears 127.0.0.1 (it once dropped it).
"""

from __future__ import annotations

import ipaddress

from synth.errors import ParameterError

__all__ = ["allowed_peers", "is_loopback", "normal_address"]


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def normal_address(text: str) -> str:
    """An IP address in one spelling (an IPv4 address mapped into IPv6 as the IPv4 one); ValueError if none."""
    address = ipaddress.ip_address(text)
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped if mapped is not None else address)


def allowed_peers(host: str, allow, *, listening: str = "listening") -> frozenset[str]:
    """The addresses heard by a transport bound to ``host``: ``allow`` checked and normalised (empty: any,
    which only a loopback ``host`` may have). ``listening`` says what is bound, for the error ("listening",
    "serving the page"). Raises ParameterError naming the flag and the address."""
    peers = set()
    for a in allow:
        try:
            peers.add(normal_address(a))
        except ValueError:
            raise ParameterError(f"--allow {a!r} is not an IP address") from None
    if not is_loopback(host) and not peers:
        raise ParameterError(
            f"{listening} on {host} would let any machine on the network play this engine: "
            "name the machines with --allow ADDR (e.g. --allow 192.168.1.20 127.0.0.1)"
        )
    return frozenset(peers)
