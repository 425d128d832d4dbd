"""The `voicenode` command: `serve` a node, `simulate` a conversation, `call` a number,
`agents diff|apply` the agent files against the store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from config import ConfigError, Settings, load_settings
from voicenode.logs import setup_logging


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,  # `voicenode --config F serve` and `serve --config F` both work
        help="settings file (TOML) over the defaults",
    )
    p = argparse.ArgumentParser(prog="voicenode", description=__doc__, parents=[common])
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", parents=[common], help="run the node (HTTP API, WebRTC, telephony)")

    sim = sub.add_parser(
        "simulate",
        parents=[common],
        help="talk to an agent through the real pipeline over a virtual transport",
    )
    sim.add_argument("--agent", default=None, help="agent name (default: agents.default)")
    sim.add_argument(
        "--out", required=True, type=Path, help="directory for agent.wav and conversation.json"
    )
    sim.add_argument(
        "--say",
        dest="lines",
        action="append",
        type=lambda s: ("say", s),
        metavar="TEXT",
        help="a caller line, spoken with a caller voice (repeatable, in order)",
    )
    sim.add_argument(
        "--wav",
        dest="lines",
        action="append",
        type=lambda s: ("wav", s),
        metavar="FILE",
        help="a caller line from a mono WAV file at any rate (repeatable, in order)",
    )
    sim.add_argument(
        "--barge-in-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="start each next caller line this long after the agent starts speaking",
    )
    call = sub.add_parser(
        "call", parents=[common], help="ask a running node to place an outbound call"
    )
    call.add_argument("target", help="sip:NUMBER@HOST, or a number dialled through the trunk")
    call.add_argument("--agent", default=None, help="agent name (default: agents.default)")
    call.add_argument("--via", choices=["sip", "asterisk"], default="sip")
    call.add_argument("--tenant", default=None, help="tenant to act for (default: demo)")
    call.add_argument("--url", default=None, help="the node's API (default: from http.*)")
    _agents_parser(sub, common)
    return p


def _agents_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    agents = sub.add_parser(
        "agents",
        parents=[common],
        help="compare the agent files with the store (diff) or apply them (apply)",
    )
    agents.add_argument("action", choices=["diff", "apply"])
    agents.add_argument("--dir", default=None, help="agent files folder (default: agents.dir)")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"voicenode: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(
        settings.node.log_level, settings.node.log_format, redact_pii=settings.node.redact_pii
    )
    if args.command == "simulate":
        from voicenode.simulate_cli import run_simulate

        return run_simulate(settings, args)
    if args.command == "call":
        from voicenode.call_cli import run_call

        return run_call(settings, args)
    if args.command == "serve":
        from voicenode.serve_cli import run_serve

        return run_serve(settings, getattr(args, "config", None))
    if args.command == "agents":
        from voicenode.agents_cli import run_agents

        return run_agents(settings, args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
