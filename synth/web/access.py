"""Who may open the page and its socket.

A page of another origin open in the same browser can send requests to 127.0.0.1, so loopback alone proves
nothing. Three checks, every one before a WebSocket is upgraded:

- the per-run **token** (:func:`new_token`, printed by serve in the page's address) on the page and the socket;
- the socket's **Origin** must be the page's own (``http://HOST:PORT``, the address the request came to), and
  that HOST must be an IP address or ``localhost``: a DNS name could be an attacker's, rebound to this machine;
- where ``--allow`` names addresses, only those **peers** may connect (as for OSC); a non-loopback listening
  address needs that list.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import secrets

from synth.control.peers import allowed_peers as _allowed_peers
from synth.control.peers import is_loopback, normal_address

__all__ = ["Access", "new_token", "allowed_peers", "is_loopback", "split_host"]


def new_token() -> str:
    """A fresh per-run secret for the page's address (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def allowed_peers(host: str, allow) -> frozenset[str]:
    """The peers that may connect to a page served on ``host`` (:func:`synth.control.peers.allowed_peers`)."""
    return _allowed_peers(host, allow, listening="serving the page")


def split_host(header: str) -> tuple[str, int] | None:
    """``(host, port)`` of a Host header (``127.0.0.1:9138``, ``[::1]:9138``, ``localhost``: port 80), or None
    when it is not one."""
    header = header.strip()
    if header.startswith("["):
        end = header.find("]")
        if end < 0:
            return None
        host, rest = header[1:end], header[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = header.partition(":")
        if ":" in port_text:
            return None
    if not host:
        return None
    if not port_text:
        return host.lower(), 80
    if not port_text.isdigit() or len(port_text) > 5:
        return None
    return host.lower(), int(port_text)


def _literal_or_localhost(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class Access:
    """The rules of one run: ``token``, the ``port`` served on, and ``peers`` (empty: any peer)."""

    token: str
    port: int
    peers: frozenset[str] = frozenset()

    def refuse_page(self, *, peer: str | None, host: str | None, token: str | None) -> str:
        """Why the page may not be served to this request ("" when it may)."""
        return self._refuse_peer(peer) or self._refuse_host(host) or self._refuse_token(token)

    def refuse_socket(self, *, peer: str | None, host: str | None, origin: str | None, token: str | None) -> str:
        """Why the socket may not be opened for this request ("" when it may)."""
        reason = self.refuse_page(peer=peer, host=host, token=token)
        if reason:
            return reason
        if not origin:
            return "no Origin header: the socket is for the page this server serves"
        if origin.lower() != f"http://{host.strip().lower()}":
            return f"Origin {origin[:100]!r} is not this page's (http://{host.strip()[:100]})"
        return ""

    def _refuse_peer(self, peer: str | None) -> str:
        if not self.peers:
            return ""
        try:
            known = peer is not None and normal_address(peer) in self.peers
        except ValueError:
            known = False
        return "" if known else f"{str(peer)[:60]} is not among the addresses --allow names"

    def _refuse_host(self, host: str | None) -> str:
        parts = split_host(host) if host else None
        if parts is None:
            return f"bad Host header {str(host)[:100]!r}"
        name, port = parts
        if port != self.port:
            return f"Host {host[:100]!r} names another port than {self.port}"
        if not _literal_or_localhost(name.strip("[]")):
            # DNS rebinding: a name that an attacker's DNS can point at this machine.
            return f"Host {host[:100]!r}: open the page by IP address (or localhost), as serve prints it"
        return ""

    def _refuse_token(self, token: str | None) -> str:
        if token is None:
            return "no token: open the address serve printed (it ends in ?token=...)"
        if not hmac.compare_digest(token.encode("utf-8", "replace"), self.token.encode("utf-8")):
            return "wrong token: open the address this run of serve printed"
        return ""
