"""`voicenode-bench wire`: set up (caller voice, mock LLM, the node), run the steps, report.

With `spawn`, the node is `voicenode serve` started here on free 127.0.0.1 ports with a fresh
data dir (so the demo tenant, its agents and number 1000 are created), stopped with SIGTERM at
the end; its CPU and memory come from /proc. With `target_url`, the node is already running;
CPU and memory come from its /metrics (the Prometheus process collector), peak RSS is the
highest sample seen.

The mock LLM answers each request with a new two-sentence reply (`bench.mock_replies`), so no
TTS cache can serve it; `MockLlmOptions.reply` pins one fixed reply (regression checks).
`arrivals` runs the steps (or the sweep) with burst or staggered callers, or a series of each
("both"). `soak_minutes` keeps `calls` calls going that long instead (`bench.wire.soak`).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec

from bench.report import machine_info
from bench.scenario import Scenario, SpokenLine, speak_lines
from bench.wire.arrivals import arrival_modes
from bench.wire.caller import CallerOptions, PreparedLine, prepare_lines
from bench.wire.leg import LegError, LegTarget, OpenLeg, open_transport
from bench.wire.node import NodeStats, SpawnedNode
from bench.wire.plots import write_plots
from bench.wire.report import render_summary, wire_report, write_wire_report
from bench.wire.runner import (
    ProgressBar,
    StepOptions,
    StepResult,
    SweepOptions,
    capacity,
    next_step,
    run_step,
)
from bench.wire.soak import SoakOptions, run_soak

MOCK_AGENT = "bench-llm"
MOCK_NUMBER = "2000"
DEFAULT_LLM_REPLY = "Sure, I can help with that. What day would you like to come in?"


@dataclass(frozen=True)
class MockLlmOptions:
    ttft_ms: float = 300.0
    tokens_per_s: float | None = 40.0
    reply: str | None = None
    """A fixed reply for every request; None: a new varied reply each time."""
    seed: int | None = None
    """Seed of the varied replies (None: a new sequence each run)."""
    port: int = 0


@dataclass(frozen=True)
class WireConfig:
    transport: str
    out: Path
    scenario: Scenario
    scenario_source: str = ""
    spawn: bool = True
    node_config: Path | None = None
    target: LegTarget = field(default_factory=LegTarget)
    """Where the node is (for `spawn`, its ports and key are filled in after it starts)."""
    calls: int = 1
    sweep: bool = False
    sweep_step: int = 1
    max_calls: int = 16
    target_p95_ms: float = 1500.0
    stagger_s: float = 0.5
    arrivals: str = "staggered"
    """burst | staggered | both (a series of each)."""
    soak_minutes: float | None = None
    """Keep `calls` calls going this long (a soak) instead of steps."""
    caller: CallerOptions = field(default_factory=CallerOptions)
    mock_llm: MockLlmOptions | None = None
    save_audio: bool = False


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def render_scenario(scenario: Scenario) -> list[SpokenLine]:
    """The scenario's lines in the caller voice (`media.speech`: the embedded Piper voice,
    pitched up, noise off), loaded here: the bench starts no TTS engine of the node's."""
    from media.speech import CallerVoice

    return speak_lines(scenario, CallerVoice.load())


def mock_agent_toml(base_url: str, ttft_ms: float) -> str:
    timeout = min(60.0, max(2.5, ttft_ms / 1000.0 + 2.0))
    return (
        f'name = "{MOCK_AGENT}"\n'
        'kind = "llm"\n'
        'description = "voicenode-bench: an LLM agent on the bench\'s mock LLM"\n'
        'greeting = "Thanks for calling. How can I help you today?"\n'
        'prompt = "You are a receptionist. Be brief."\n'
        "[llm]\n"
        f'base_url = "{base_url}"\n'
        'model = "mock"\n'
        f"first_token_timeout_s = {timeout}\n"
    )


async def run_wire(
    cfg: WireConfig,
    *,
    progress: Callable[[str], None] = _say,
    lines: list[SpokenLine] | None = None,
) -> dict[str, Any]:
    """Run the bench and write the report, plots (and audio) into `cfg.out`; returns the
    report. Raises LegError when the node cannot be started or reached."""
    opener = open_transport(cfg.transport)
    cfg.out.mkdir(parents=True, exist_ok=True)
    if lines is None:
        progress("rendering the caller's lines")
        lines = render_scenario(cfg.scenario)
    machine = machine_info()
    agent = cfg.scenario.agent
    async with AsyncExitStack() as stack:
        mock_url = ""
        if cfg.mock_llm is not None:
            mock_url = await _start_mock_llm(stack, cfg.mock_llm, progress)
            agent = MOCK_AGENT
        target, node_info, pid = await _reach_node(stack, cfg, agent, mock_url, progress)
        stats = NodeStats(target.base_url, pid)
        node_info["stats_from"] = stats.source
        prepared = prepare_lines(lines)
        if cfg.soak_minutes is not None:
            node_info |= _mock_info(cfg)
            return await run_soak(
                SoakOptions(
                    calls=cfg.calls,
                    minutes=cfg.soak_minutes,
                    transport=cfg.transport,
                    out=cfg.out,
                    caller=cfg.caller,
                    expect_greeting=cfg.scenario.expect_greeting,
                ),
                opener,
                target,
                prepared,
                stats,
                node_info,
                progress,
            )
        steps: list[StepResult] = []
        for arrivals in arrival_modes(cfg.arrivals):
            steps += await _run_steps(cfg, opener, target, prepared, stats, progress, arrivals)
    report = _report(cfg, steps, agent, node_info, machine)
    json_path, md_path = write_wire_report(report, cfg.out)
    plots = write_plots(report, steps, cfg.out)
    if cfg.save_audio:
        _save_audio(steps, cfg.out)
    progress(render_summary(report).rstrip())
    progress(f"wrote {json_path}, {md_path} and {', '.join(p.name for p in plots)}")
    return report


async def _start_mock_llm(
    stack: AsyncExitStack, m: MockLlmOptions, progress: Callable[[str], None]
) -> str:
    """The mock LLM, serving until `stack` closes; its base URL."""
    from bench.mock_llm import LlmDouble, Reply, tokens_of
    from bench.mock_replies import varied_reply_source

    double = await stack.enter_async_context(
        LlmDouble(
            ttft_s=m.ttft_ms / 1000.0,
            tokens_per_s=m.tokens_per_s,
            default_reply=Reply(tokens=tokens_of(m.reply or DEFAULT_LLM_REPLY)),
            reply_source=None if m.reply is not None else varied_reply_source(m.seed),
            port=m.port,
            record=False,
        )
    )
    kind = "fixed reply" if m.reply is not None else "varied replies"
    progress(
        f"mock LLM at {double.base_url} (ttft {m.ttft_ms:g} ms, {m.tokens_per_s} tokens/s, {kind})"
    )
    return double.base_url


async def _reach_node(
    stack: AsyncExitStack,
    cfg: WireConfig,
    agent: str,
    mock_url: str,
    progress: Callable[[str], None],
) -> tuple[LegTarget, dict[str, Any], int | None]:
    """The node to call, started here with `spawn` (stopped when `stack` closes): the target
    (calling `agent`; for the mock LLM over SIP, on a number routed to it), what the report
    says of the node, and the spawned node's pid."""
    target = cfg.target
    pid: int | None = None
    if cfg.spawn:
        node = await _spawn_node(stack, cfg, agent, mock_url, progress)
        pid = node.pid
        target = _replace_target(
            target,
            base_url=node.base_url,
            api_key=node.admin_key,
            sip_host="127.0.0.1",
            sip_port=node.sip_port,
            audiosocket_host="127.0.0.1",
            audiosocket_port=node.audiosocket_port,
        )
        node_info: dict[str, Any] = {"mode": "spawned", "url": node.base_url, "pid": pid}
    else:
        node_info = {"mode": "target", "url": target.base_url}
    target = _replace_target(target, agent=agent)
    if cfg.mock_llm is not None and cfg.transport == "sip":
        await _add_number(target, MOCK_NUMBER, MOCK_AGENT)
        target = _replace_target(target, sip_number=MOCK_NUMBER)
    return target, node_info, pid


async def _spawn_node(
    stack: AsyncExitStack,
    cfg: WireConfig,
    agent: str,
    mock_url: str,
    progress: Callable[[str], None],
) -> SpawnedNode:
    """`voicenode serve` with a fresh data dir (and the mock LLM's agent), running until
    `stack` closes."""
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="voicenode-bench-")))
    env = {"VOICENODE_AUDIOSOCKET__DEFAULT_AGENT": f"{cfg.target.tenant}/{agent}"}
    if cfg.mock_llm is not None:
        agents_dir = tmp / "agents"
        agents_dir.mkdir()
        (agents_dir / f"{MOCK_AGENT}.toml").write_text(
            mock_agent_toml(mock_url, cfg.mock_llm.ttft_ms), encoding="utf-8"
        )
        env["VOICENODE_AGENTS__DIR"] = str(agents_dir)
    most = cfg.max_calls if cfg.sweep else cfg.calls
    node = SpawnedNode(
        config=cfg.node_config,
        data_dir=tmp / "data",
        log_path=cfg.out / "node.log",
        env=env,
        max_calls=max(8, most + 2),
    )
    progress("starting the node (loading models)")
    await stack.enter_async_context(node)
    return node


async def _run_steps(
    cfg: WireConfig,
    opener: OpenLeg,
    target: LegTarget,
    lines: list[PreparedLine],
    stats: NodeStats,
    progress: Callable[[str], None],
    arrivals: str,
) -> list[StepResult]:
    """`cfg.calls` concurrent calls; with `sweep`, more step by step until the target fails."""
    sweep = SweepOptions(
        start=cfg.calls,
        step=cfg.sweep_step,
        max_calls=cfg.max_calls,
        target_p95_ms=cfg.target_p95_ms,
    )
    options = StepOptions(stagger_s=cfg.stagger_s, arrivals=arrivals, caller=cfg.caller)
    bar = ProgressBar()
    steps: list[StepResult] = []
    n: int | None = cfg.calls
    while n is not None:
        result = await run_step(
            n,
            opener,
            target,
            lines,
            expect_greeting=cfg.scenario.expect_greeting,
            options=options,
            stats=stats,
            progress=bar,
            label=f"{cfg.transport} x{n} {arrivals}",
        )
        steps.append(result)
        p95 = result.v2v_p95_ms()
        progress(
            f"{n} call(s), {arrivals}: p95 voice to voice "
            f"{'-' if p95 is None else f'{p95:.0f}'} ms, {result.failed} failed"
        )
        n = next_step(result, sweep) if cfg.sweep else None
    return steps


def _report(
    cfg: WireConfig,
    steps: list[StepResult],
    agent: str,
    node_info: dict[str, Any],
    machine: dict[str, Any],
) -> dict[str, Any]:
    scenario_info = {
        "name": cfg.scenario.name,
        "agent": agent,
        "lines": len(cfg.scenario.lines),
        "phone_line": cfg.scenario.phone_line,
        "file": cfg.scenario_source,
    }
    node_info |= _mock_info(cfg)
    modes = arrival_modes(cfg.arrivals)
    by_arrivals = {
        a: capacity([s for s in steps if s.arrivals == a], cfg.target_p95_ms) for a in modes
    }
    # The capacity target is the staggered one (real traffic); burst alone: the burst's.
    headline = by_arrivals["staggered" if "staggered" in modes else modes[0]]
    return wire_report(
        steps,
        transport=cfg.transport,
        scenario=scenario_info,
        node=node_info,
        machine=machine,
        capacity_calls=headline if cfg.sweep else None,
        capacity_by_arrivals=by_arrivals if cfg.sweep else None,
        swept=cfg.sweep,
        target_p95_ms=cfg.target_p95_ms,
    )


def _mock_info(cfg: WireConfig) -> dict[str, Any]:
    """What the report says of the mock LLM (nothing without one)."""
    m = cfg.mock_llm
    if m is None:
        return {}
    return {
        "mock_llm": {
            "ttft_ms": m.ttft_ms,
            "tokens_per_s": m.tokens_per_s,
            "replies": "fixed" if m.reply is not None else "varied",
            "seed": m.seed,
        }
    }


def _replace_target(target: LegTarget, **changes: Any) -> LegTarget:
    return msgspec.structs.replace(target, **changes)


async def _add_number(target: LegTarget, number: str, agent: str) -> None:
    headers = {"Authorization": f"Bearer {target.api_key}"}
    async with httpx.AsyncClient(base_url=target.base_url, headers=headers) as client:
        r = await client.post(
            "/v1/numbers", params={"tenant": target.tenant}, json={"number": number, "agent": agent}
        )
        if r.status_code not in (200, 201, 409):
            raise LegError(f"cannot route number {number} to {agent}: HTTP {r.status_code}")


def _save_audio(steps: list[StepResult], out: Path) -> None:
    """Each call's received audio as a WAV (packets placed at their arrival times)."""
    import numpy as np

    from bench.wire.measure import pcm_samples
    from media.wav import write_wav

    audio_dir = out / "audio"
    audio_dir.mkdir(exist_ok=True)
    for step in steps:
        for tl in step.timelines:
            if not tl.packets or tl.answered is None:
                continue
            end = max(p.at for p in tl.packets) - tl.answered + 1.0
            track = np.zeros(int(end * 16_000) + 16_000, dtype=np.int16)
            for p in tl.packets:
                s = pcm_samples(p.pcm)
                at = max(0, int((p.at - tl.answered) * 16_000))
                track[at : at + len(s)] = s[: len(track) - at]
            name = f"{step.arrivals}_step{step.calls}_call{tl.call}_received.wav"
            write_wav(audio_dir / name, track)
