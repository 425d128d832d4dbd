"""A seeded SIP fuzzer for the node's SIP edge: mutated datagrams and TCP streams.

    python -m bench.sip_fuzz --target 127.0.0.1:5060 --count 1000000 --seed 1 [--tcp 1000]
                             [--seeds-dir DIR] [--rate N] [--out FILE]

Seeds are well-formed INVITE/OPTIONS/REGISTER/BYE/CANCEL/ACK/INFO requests (and any raw
messages in `--seeds-dir`, e.g. RFC 4475's torture messages); each datagram is one seed with
0-8 byte, token or line mutations (`Mutator`, a pure function of the seed number, so a run is
repeated exactly by its seed). The fuzzer only sends: whether the node survived, kept its live
calls' audio flowing and kept its memory flat is measured by whoever runs it (the test suite's
`tests/sip/test_fuzz.py`, or an operator watching a node) and reported with the send counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

SDP = (
    "v=0\r\no=fuzz 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {rtp} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)
_HEAD = (
    "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{n}\r\n"
    "From: <sip:fuzz@127.0.0.1>;tag=f{n}\r\nTo: <{to}>{to_tag}\r\nCall-ID: {n}@fuzz\r\n"
    "CSeq: {cseq} {method}\r\nContact: <sip:fuzz@{via}>\r\nMax-Forwards: 70\r\n"
)
METHODS = ("INVITE", "OPTIONS", "REGISTER", "BYE", "CANCEL", "ACK", "INFO")


def seed_message(method: str, n: str, via: str, service: str = "1000") -> bytes:
    """One well-formed request of `method` (an INVITE carries an SDP offer)."""
    uri = f"sip:{service}@127.0.0.1"
    body = SDP.format(rtp=40_000) if method == "INVITE" else ""
    head = _HEAD.format(
        method=method, uri=uri, via=via, n=n, to=uri, cseq=2 if method == "BYE" else 1,
        to_tag=f";tag=t{n}" if method in ("BYE", "INFO") else "",
    )  # fmt: skip
    kind = "Content-Type: application/sdp\r\n" if body else ""
    return f"{head}{kind}Content-Length: {len(body)}\r\n\r\n{body}".encode()


class Mutator:
    """Byte, token and line mutations of a message, drawn from one seeded generator."""

    TOKENS = (b"\r\n", b":", b";", b"<", b">", b"@", b"\x00", b"%00", b" ", b"\t", b",",
              b"sip:", b"SIP/2.0", b"Content-Length: 99999", b"\xff\xfe", b"=", b'"')  # fmt: skip

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def mutate(self, data: bytes) -> bytes:
        rng = self._rng
        out = bytearray(data)
        for _ in range(rng.randint(0, 8)):
            match rng.randrange(6):
                case 0 if out:
                    out[rng.randrange(len(out))] = rng.randrange(256)
                case 1 if out:
                    at = rng.randrange(len(out))
                    del out[at : at + rng.randint(1, 40)]
                case 2:
                    at = rng.randrange(len(out) + 1)
                    out[at:at] = rng.choice(self.TOKENS) * rng.randint(1, 3)
                case 3:
                    lines = bytes(out).split(b"\r\n")
                    rng.shuffle(lines)
                    out = bytearray(b"\r\n".join(lines))
                case 4:
                    lines = bytes(out).split(b"\r\n")
                    lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines) * 2)
                    out = bytearray(b"\r\n".join(lines))
                case _:
                    at = rng.randrange(len(out) + 1)
                    out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        return bytes(out[:65_000])


def datagrams(
    seed: int, count: int, via: str, extra_seeds: list[bytes] | None = None
) -> Iterator[bytes]:
    """`count` mutated messages from the built-in seeds and `extra_seeds`, repeatable by seed."""
    rng = random.Random(seed)
    mutator = Mutator(seed + 1)
    extra = extra_seeds or []
    for i in range(count):
        if extra and rng.random() < 0.3:
            message = rng.choice(extra)
        else:
            message = seed_message(rng.choice(METHODS), f"{seed}x{i}", via)
        yield mutator.mutate(message)


async def send_tcp(target: tuple[str, int], payloads: list[bytes]) -> int:
    """Send each payload on its own TCP connection (closed after); connections made."""
    made = 0
    for payload in payloads:
        try:
            _, writer = await asyncio.open_connection(*target)
        except OSError:
            continue
        made += 1
        writer.write(payload)
        try:
            await writer.drain()
        except OSError:
            pass
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    return made


async def fuzz(
    target: tuple[str, int],
    count: int,
    seed: int,
    *,
    tcp: int = 0,
    extra_seeds: list[bytes] | None = None,
    rate: float = 0,
) -> dict[str, int]:
    """Send `count` datagrams (at `rate` a second; 0: as fast as the socket takes them) and
    `tcp` streams; yields to the event loop between batches so a node in the same process runs."""
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        via = f"127.0.0.1:{sock.getsockname()[1]}"
        start = time.monotonic()
        for data in datagrams(seed, count, via, extra_seeds):
            try:
                sock.sendto(data, target)
                sent += 1
            except BlockingIOError:
                await asyncio.sleep(0.001)
            except OSError:
                pass
            if sent % 64 == 0:
                ahead = sent / rate - (time.monotonic() - start) if rate else 0
                await asyncio.sleep(max(0.0, ahead))
    streams = list(datagrams(seed + 7, tcp, "127.0.0.1:9", extra_seeds))
    made = await send_tcp(target, streams)
    return {"datagrams": sent, "tcp_streams": made}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.sip_fuzz", description=__doc__.split("\n")[0])
    ap.add_argument("--target", default="127.0.0.1:5060")
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tcp", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--seeds-dir", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    extra = [p.read_bytes() for p in sorted(args.seeds_dir.iterdir())] if args.seeds_dir else []
    started = time.monotonic()
    report = asyncio.run(
        fuzz((host, int(port)), args.count, args.seed, tcp=args.tcp, extra_seeds=extra,
             rate=args.rate)
    )  # fmt: skip
    text = json.dumps(
        {"seed": args.seed, **report, "seconds": round(time.monotonic() - started, 1)}
    )
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
