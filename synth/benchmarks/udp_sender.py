"""A UDP sender in its own process, for the flood bench: ``python -m synth.benchmarks.udp_sender --port P
--rate R --seconds S --kind latent|status``. It sends OSC messages to 127.0.0.1:P at about R a second (in
bursts every millisecond) and prints one JSON line: messages sent, bytes sent, seconds, and, for ``status``,
reply bytes received. Its own process, so that the sender's Python loop does not take the engine's GIL.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time

import numpy as np

from synth.osc.packets import encode_message

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="udp_sender")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--kind", choices=("latent", "status"), default="latent")
    parser.add_argument("--latent-size", type=int, default=2048)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    if args.kind == "latent":
        datagrams = [encode_message("/synth/latent/set", [int(i), float(v)])
                     for i, v in zip(rng.integers(0, args.latent_size, 512), rng.normal(0, 0.5, 512), strict=True)]
    else:
        datagrams = [encode_message("/synth/status")]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    target = ("127.0.0.1", args.port)
    sent = sent_bytes = received_bytes = 0
    t0 = time.monotonic()
    while True:
        now = time.monotonic() - t0
        if now >= args.seconds:
            break
        due = int(now * args.rate) - sent
        for _ in range(max(0, due)):
            data = datagrams[sent % len(datagrams)]
            try:
                sock.sendto(data, target)
            except BlockingIOError:
                break  # the socket buffer is full: the kernel decides the rate now
            sent += 1
            sent_bytes += len(data)
        try:
            while True:
                received_bytes += len(sock.recv(65536))
        except BlockingIOError:
            pass
        time.sleep(0.001)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # the last replies
        try:
            received_bytes += len(sock.recv(65536))
        except BlockingIOError:
            time.sleep(0.01)
    print(json.dumps({"sent": sent, "sent_bytes": sent_bytes, "seconds": time.monotonic() - t0 - 0.5,
                      "received_bytes": received_bytes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
