"""Arguments and entry points of `voicenode-bench wire` and `voicenode-bench mock-llm`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.wire.run import WireConfig

PROG = "voicenode-bench"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def add_wire_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    w = sub.add_parser(
        "wire",
        parents=[common],
        help="latency and capacity of a node measured from the wire (real transports)",
        description=(
            "Call a node over WebRTC, SIP or AudioSocket with scripted callers and measure "
            "from the audio on the wire: voice to voice, time to greeting, barge-in stop, "
            "packet gaps, caller WER, node CPU/memory; with --sweep, the node's capacity."
        ),
    )
    _add_where(w)
    _add_load(w)
    _add_target(w)
    _add_mock_llm(w)
    w.add_argument(
        "--save-audio",
        action="store_true",
        help="also write each call's received audio under DIR/audio",
    )


def _add_where(w: argparse.ArgumentParser) -> None:
    """The transport, which node (spawned or running), the report directory, the scenario."""
    from bench.wire.leg import TRANSPORTS

    w.add_argument("--transport", required=True, choices=sorted(TRANSPORTS))
    where = w.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--spawn", action="store_true", help="start `voicenode serve` here (with --config)"
    )
    where.add_argument("--target", metavar="URL", help="a running node's HTTP base URL")
    w.add_argument("--out", required=True, type=Path, metavar="DIR", help="report directory")
    w.add_argument(
        "--scenario",
        type=Path,
        default=None,
        metavar="FILE",
        help="scenario TOML (default: the receptionist with a barge-in)",
    )


def _add_load(w: argparse.ArgumentParser) -> None:
    """How many calls: concurrent calls, the capacity sweep and its target, the stagger."""
    w.add_argument(
        "--calls",
        type=_positive_int,
        default=1,
        metavar="N",
        help="concurrent calls (the first step of a sweep; default 1)",
    )
    w.add_argument(
        "--sweep",
        action="store_true",
        help="add calls step by step until p95 voice to voice passes the target",
    )
    w.add_argument("--sweep-step", type=_positive_int, default=1, metavar="K")
    w.add_argument(
        "--max-calls",
        type=_positive_int,
        default=16,
        metavar="N",
        help="where a sweep stops at the latest (default 16)",
    )
    w.add_argument(
        "--target-p95-ms",
        type=_positive,
        default=1500.0,
        metavar="MS",
        help="p95 voice to voice that defines capacity (default 1500)",
    )
    w.add_argument(
        "--stagger-ms",
        type=_non_negative,
        default=500.0,
        metavar="MS",
        help="staggered arrivals: time between the starts of concurrent calls (default 500)",
    )
    w.add_argument(
        "--arrivals",
        choices=("burst", "staggered", "both"),
        default="staggered",
        help="burst: every call speaks each line at the same instant (the worst case); "
        "staggered: calls start --stagger-ms apart; both: a series of each (default staggered)",
    )
    w.add_argument(
        "--soak",
        type=_positive,
        default=None,
        metavar="MINUTES",
        help="keep --calls calls going for MINUTES (a new call replaces one that ends); "
        "report RSS, the node's responsiveness and voice to voice over time",
    )
    w.add_argument(
        "--reply-timeout",
        type=_positive,
        default=10.0,
        metavar="S",
        help="a line the agent does not answer within S seconds is followed by the next one "
        "and has no voice to voice (default %(default)s)",
    )


def _add_target(w: argparse.ArgumentParser) -> None:
    """How to reach a running node: its key, tenant, AudioSocket and SIP addresses."""
    w.add_argument(
        "--api-key", default=None, help="key for --target (default: $VOICENODE_ADMIN_KEY)"
    )
    w.add_argument("--tenant", default="demo")
    w.add_argument(
        "--audiosocket",
        type=_host_port,
        default=None,
        metavar="HOST:PORT",
        help="the target's AudioSocket listener (default: the URL's host:9092)",
    )
    w.add_argument("--audiosocket-rate", type=int, choices=(8000, 16000), default=8000)
    w.add_argument(
        "--sip",
        type=_host_port,
        default=None,
        metavar="HOST:PORT",
        help="the target's SIP address (default: the URL's host:5060)",
    )
    w.add_argument("--sip-number", default="1000", help="number to dial (default 1000)")


def _add_mock_llm(w: argparse.ArgumentParser) -> None:
    """The mock LLM run here for an LLM agent: its pacing and port."""
    w.add_argument(
        "--llm-mock", action="store_true", help="run a mock LLM here and talk to an LLM agent on it"
    )
    w.add_argument(
        "--ttft-ms",
        type=_non_negative,
        default=300.0,
        metavar="MS",
        help="mock LLM time to first token (default 300)",
    )
    w.add_argument(
        "--tokens-per-s",
        type=_positive,
        default=40.0,
        metavar="N",
        help="mock LLM tokens per second (default 40)",
    )
    _add_replies(w)
    w.add_argument(
        "--llm-port",
        type=int,
        default=0,
        metavar="PORT",
        help="mock LLM port (default: a free one; fix it for --target)",
    )


def _add_replies(p: argparse.ArgumentParser) -> None:
    """What the mock LLM says: varied replies (seeded) or one fixed reply."""
    p.add_argument(
        "--fixed-reply",
        "--reply",
        dest="fixed_reply",
        default=None,
        metavar="TEXT",
        help="answer every request with TEXT (default: a new two-sentence reply each time)",
    )
    p.add_argument(
        "--reply-seed",
        type=int,
        default=None,
        metavar="N",
        help="seed of the varied replies (default: different each run)",
    )


def add_mock_llm_parser(sub: Any) -> None:
    m = sub.add_parser(
        "mock-llm",
        help="serve the OpenAI-compatible streaming mock LLM",
        description="Serve POST /v1/chat/completions (SSE), paced: a new two-sentence "
        "receptionist reply for each request, or --fixed-reply.",
    )
    m.add_argument("--host", default="127.0.0.1")
    m.add_argument("--port", type=int, default=8000)
    m.add_argument("--ttft-ms", type=_non_negative, default=300.0, metavar="MS")
    m.add_argument("--tokens-per-s", type=_positive, default=40.0, metavar="N")
    _add_replies(m)


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


class _UsageError(Exception):
    """Arguments that do not fit together (exit status 2 with the message)."""


def wire(args: argparse.Namespace) -> int:
    from bench.scenario import ScenarioError
    from bench.wire.leg import LegError
    from bench.wire.run import run_wire

    try:
        cfg = _wire_config(args)
        report = asyncio.run(run_wire(cfg))
    except (_UsageError, LegError, ScenarioError) as exc:
        return _fail(str(exc))
    return 0 if report["v2v_ms"]["n"] else 1


def _wire_config(args: argparse.Namespace) -> WireConfig:
    """The run's settings from the arguments; `_UsageError`, `ScenarioError` or `LegError`
    (the transport's module cannot be imported) when they cannot be run."""
    from bench.scenario import WIRE_SCENARIO, default_scenario_path, load_scenario
    from bench.wire.caller import CallerOptions
    from bench.wire.leg import LegTarget, open_transport
    from bench.wire.run import MockLlmOptions, WireConfig

    scenario = load_scenario(args.scenario, default=WIRE_SCENARIO)
    if args.out.exists() and not args.out.is_dir():
        raise _UsageError(f"{args.out}: --out must be a directory")
    config = getattr(args, "config", None)
    if config is not None and not args.spawn:
        raise _UsageError("--config applies to a node started with --spawn")
    if args.soak is not None and args.sweep:
        raise _UsageError("--soak and --sweep do not go together (soak at a fixed --calls)")
    open_transport(args.transport)
    fields: dict[str, Any] = {
        "tenant": args.tenant,
        "agent": scenario.agent,
        "sip_number": args.sip_number,
        "audiosocket_rate": args.audiosocket_rate,
    }
    if args.target:
        fields |= _running_node(args)
    mock = None
    if args.llm_mock:
        mock = MockLlmOptions(
            ttft_ms=args.ttft_ms,
            tokens_per_s=args.tokens_per_s,
            reply=args.fixed_reply,
            seed=args.reply_seed,
            port=args.llm_port,
        )
    source = str(args.scenario) if args.scenario else str(default_scenario_path(WIRE_SCENARIO))
    return WireConfig(
        transport=args.transport,
        out=args.out,
        scenario=scenario,
        scenario_source=source,
        spawn=args.spawn,
        node_config=Path(config) if config else None,
        target=LegTarget(**fields),
        calls=args.calls,
        sweep=args.sweep,
        sweep_step=args.sweep_step,
        max_calls=max(args.max_calls, args.calls),
        target_p95_ms=args.target_p95_ms,
        stagger_s=args.stagger_ms / 1000.0,
        arrivals=args.arrivals,
        soak_minutes=args.soak,
        mock_llm=mock,
        save_audio=args.save_audio,
        caller=CallerOptions(reply_timeout_s=args.reply_timeout),
    )


def _running_node(args: argparse.Namespace) -> dict[str, Any]:
    """The `LegTarget` fields that reach the node at `--target`: its URL, key and the
    AudioSocket and SIP addresses (by default on the URL's host)."""
    from urllib.parse import urlsplit

    parts = urlsplit(args.target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _UsageError(f"--target: expected an http(s) URL, got {args.target!r}")
    key = args.api_key or os.environ.get("VOICENODE_ADMIN_KEY", "")
    if not key:
        raise _UsageError("--target needs --api-key or VOICENODE_ADMIN_KEY")
    host = parts.hostname
    a_host, a_port = args.audiosocket or (host, 9092)
    s_host, s_port = args.sip or (host, 5060)
    return {
        "base_url": args.target.rstrip("/"),
        "api_key": key,
        "audiosocket_host": a_host,
        "audiosocket_port": a_port,
        "sip_host": s_host,
        "sip_port": s_port,
    }


def mock_llm(args: argparse.Namespace) -> int:
    from bench.mock_llm import LlmDouble, Reply, tokens_of
    from bench.mock_replies import varied_reply_source
    from bench.wire.run import DEFAULT_LLM_REPLY

    async def serve() -> None:
        fixed = args.fixed_reply
        reply = Reply(tokens=tokens_of(fixed or DEFAULT_LLM_REPLY))
        async with LlmDouble(
            ttft_s=args.ttft_ms / 1000.0,
            tokens_per_s=args.tokens_per_s,
            default_reply=reply,
            reply_source=None if fixed is not None else varied_reply_source(args.reply_seed),
            host=args.host,
            port=args.port,
            record=False,
        ) as double:
            print(f"{PROG}: mock LLM at {double.base_url}", file=sys.stderr, flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        return _fail(f"mock-llm: cannot listen on {args.host}:{args.port}: {exc}")
    return 0
