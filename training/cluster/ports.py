"""Free TCP ports on the loopback interface, for local workers."""

from __future__ import annotations

import contextlib
import socket

__all__ = ["free_ports"]


def free_ports(n: int, *, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports nobody listens on now (each bound once by the OS's choice, all held until every one
    is chosen so none is handed out twice). Another process may take one before it is used: a worker then
    reports the port in use (:mod:`training.cluster.rendezvous`)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(n):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports
