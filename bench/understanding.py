"""`voicenode-bench understanding`: how well the node hears callers and what it does with it.

Caller lines of two domains (the embedded receptionist's clinic and a pizzeria agent, in
`bench/scenarios/understanding_lines.toml`), each with the intent it should reach at the
agent's first question, are spoken by two voices (the node's Piper voice through its TTS
engine, and espeak-ng), put through the telephone band (16 kHz → 8 kHz, G.711 µ-law encoded
and decoded with the node's codec, back to 16 kHz with the node's inbound resampler), and
recognised by the node's STT engine as the node loads it. Each transcript goes to a fresh
flow agent at its first question: the matched intent, and whether the agent ended or
transferred the call.

Conditions, on the same audio: `before` (no vocabulary; numbers as the number slot reads
them), `context_only` (the vocabulary as recogniser context), `after` (context, vocabulary
snapping in the matcher, the digits normaliser) and `linear_upsampling` (as before, but the
8 → 16 kHz step by linear interpolation instead of the node's filtered resampler: what an
unfiltered path would cost). Not a timing bench: the machine may be busy.
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import numpy.typing as npt

from agents.base import (
    AgentContext,
    CallStarted,
    EndCall,
    Message,
    Transfer,
    UserSaid,
)
from agents.catalog import embedded_specs, parse_spec
from agents.flow.agent import FlowAgent
from agents.flow.digits import find_digits
from agents.flow.ending import route_ending
from agents.flow.intents import IntentMatcher
from agents.flow.slots import extract_number
from agents.flow.spec import Route
from agents.spec import AgentSpec
from agents.vocabulary import Vocabulary, stt_context
from agents.words.text import normalize
from bench.understanding_score import (
    CONDITIONS,
    summary_row,
    words_as_written,
    words_normalised,
)
from media.g711 import ulaw_decode, ulaw_encode
from media.resample import StreamResampler, resample
from media.speech import espeak

Samples = npt.NDArray[np.int16]
Voice = Callable[[str], Samples]
NARROW = 8000
WIDE = 16000
WIDE_BEAM = 5
"""The beam of the what-if condition `after_beam5` (the node's finals stay at `stt.beam_size`)."""


class LineSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    domain: str
    text: str
    intent: str
    """The intent the line should reach at the agent's first question ("none": none)."""
    digits: str = ""
    """The digit string a digits slot should get from the line, if it has one."""
    held_out: bool = False
    """Written before a round of tuning and never used for it: reported apart."""
    held_out_group: str = ""
    """Which held-out group ("": the third round's; "round4": written before the fourth
    round's matcher rules): each is reported apart."""


def line_set(record: dict[str, Any]) -> str:
    """The set a line (or a record of one) belongs to: "tuned", "held_out" (the third
    round's group) or "held_out_<group>"."""
    if not record.get("held_out"):
        return "tuned"
    group = record.get("held_out_group", "")
    return f"held_out_{group}" if group else "held_out"


class DomainSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    agent: str = ""
    """An embedded agent's name."""
    agent_file: str = ""
    """An agent file next to the lines file."""


class LinesFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    domain: list[DomainSpec]
    line: list[LineSpec]


def default_lines_path() -> Path:
    return Path(__file__).parent / "scenarios" / "understanding_lines.toml"


def load_lines(path: Path) -> tuple[dict[str, AgentSpec], list[LineSpec]]:
    """The domains' agents and the lines; ValueError naming the problem."""
    data = msgspec.convert(tomllib.loads(path.read_text()), LinesFile)
    specs: dict[str, AgentSpec] = {}
    for d in data.domain:
        if d.agent_file:
            specs[d.name] = parse_spec((path.parent / d.agent_file).read_text(), d.agent_file)
        else:
            specs[d.name] = embedded_specs()[d.agent]
    for i, line in enumerate(data.line):
        spec = specs.get(line.domain)
        if spec is None or spec.flow is None:
            raise ValueError(f"line[{i}]: unknown domain {line.domain!r}")
        if line.intent != "none" and line.intent not in first_routes(spec):
            raise ValueError(f"line[{i}]: {line.intent!r} is not routed at the first question")
    return specs, data.line


# ---- voices and the telephone band ----


def piper_voice(tts: Any) -> Voice:
    """The node's TTS engine (its Piper voice), noise off: the same audio every run."""

    def speak(text: str) -> Samples:
        audio: Samples = tts.synthesize_blocking(text, deterministic=True)
        return audio

    return speak


def telephone(samples: Samples, *, filtered: bool = True) -> Samples:
    """`samples` (16 kHz) as the node gets them from an 8 kHz G.711 µ-law call: narrowed to
    8 kHz, encoded and decoded, widened again by the node's inbound resampler (`filtered`) or
    by linear interpolation."""
    narrow = ulaw_decode(ulaw_encode(resample(samples, WIDE, NARROW)))
    if not filtered:
        t = np.arange(len(narrow) * 2) / 2
        return np.rint(np.interp(t, np.arange(len(narrow)), narrow)).astype(np.int16)
    up = StreamResampler(NARROW, WIDE)
    return np.concatenate([up.process(narrow), up.flush()])


# ---- what the agent makes of a transcript ----


def first_routes(spec: AgentSpec) -> dict[str, Route]:
    """Intent → route at the flow's first question (the start node's, then flow-wide)."""
    assert spec.flow is not None
    routes = {r.intent: r for r in spec.flow.nodes[spec.flow.start].routes}
    for r in spec.flow.routes:
        routes.setdefault(r.intent, r)
    return routes


async def understand(spec: AgentSpec, text: str, http: httpx.AsyncClient) -> dict[str, Any]:
    """The intent `text` matches at the first question, and the end or transfer a fresh flow
    agent does on it (None: it goes on)."""
    assert spec.flow is not None
    routes = first_routes(spec)
    matcher = IntentMatcher(spec.flow.intents, spec.flow.match_threshold, spec.vocabulary)
    match = matcher.best(text, list(routes))
    agent = FlowAgent(spec, AgentContext(call_id="bench", tenant_id="bench", http=http))
    async for _ in agent.respond([], CallStarted()):
        pass
    action: str | None = None
    history = [Message(role="user", text=text)]
    async for out in agent.respond(history, UserSaid(text)):
        if isinstance(out, EndCall):
            action = "end"
        elif isinstance(out, Transfer):
            action = "transfer"
    return {"intent": match.intent if match else "none", "action": action}


def expected_action(spec: AgentSpec, intent: str) -> str | None:
    assert spec.flow is not None
    route = first_routes(spec).get(intent)
    return None if route is None else route_ending(spec.flow, route)


async def condition_result(
    line: LineSpec,
    spec: AgentSpec,
    hyp: str,
    http: httpx.AsyncClient,
    *,
    improved: bool,
) -> dict[str, Any]:
    """One condition's result for one utterance; `improved`: snapping and digits on."""
    used = spec if improved else msgspec.structs.replace(spec, vocabulary=[])
    outcome = await understand(used, hyp, http)
    scored = Vocabulary(spec.vocabulary).snap(normalize(hyp)) if improved else hyp
    if improved:
        got = find_digits(hyp, min_digits=3, max_digits=20)
    else:
        got = extract_number(hyp)
    wanted = expected_action(spec, line.intent)
    return {
        "hyp": hyp,
        "hyp_written": words_as_written(scored),
        "hyp_words": words_normalised(scored),
        **outcome,
        "wrong_irreversible": outcome["action"] is not None and outcome["action"] != wanted,
        "digits": got,
        "digits_ok": bool(line.digits) and got == line.digits,
    }


async def run_line(
    line: LineSpec,
    spec: AgentSpec,
    voice: tuple[str, Voice],
    stt: Any,
    http: httpx.AsyncClient,
    wide_stt: Any = None,
) -> dict[str, Any]:
    """One line in one voice, through every condition (`wide_stt`: the same engine at a wider
    beam, for the what-if condition `after_beam5` and its decode time against `stt`'s)."""
    audio = voice[1](line.text)
    heard = telephone(audio)
    context = stt_context(spec.vocabulary)
    plain = await stt.transcribe(heard, final=True) or ""
    wide, wide_ms = "", 0.0
    if wide_stt is not None and len(line.text) % 2:  # the order alternates: load drift cancels
        wide, wide_ms = await _timed(wide_stt, heard, context)
    biased, decode_ms = await _timed(stt, heard, context)
    if wide_stt is not None and not len(line.text) % 2:
        wide, wide_ms = await _timed(wide_stt, heard, context)
    linear = await stt.transcribe(telephone(audio, filtered=False), final=True) or ""
    record = {
        "domain": line.domain,
        "voice": voice[0],
        "text": line.text,
        "intent": line.intent,
        "digits": line.digits,
        "held_out": line.held_out,
        "held_out_group": line.held_out_group,
        "text_intent": (await understand(spec, line.text, http))["intent"],
        "ref_written": words_as_written(line.text),
        "ref_words": words_normalised(line.text),
        "decode_ms": {"after": decode_ms},
        "before": await condition_result(line, spec, plain, http, improved=False),
        "context_only": await condition_result(line, spec, biased, http, improved=False),
        "after": await condition_result(line, spec, biased, http, improved=True),
        "linear_upsampling": await condition_result(line, spec, linear, http, improved=False),
    }
    if wide_stt is not None:
        record["decode_ms"]["after_beam5"] = wide_ms
        record["after_beam5"] = await condition_result(line, spec, wide, http, improved=True)
    return record


async def _timed(stt: Any, audio: Samples, context: str) -> tuple[str, float]:
    """A final's transcript with its decode time (ms, wall clock: queue and decode)."""
    started = time.perf_counter()
    text = await stt.transcribe(audio, final=True, context=context) or ""
    return text, 1000 * (time.perf_counter() - started)


async def run_bench(
    specs: dict[str, AgentSpec],
    lines: list[LineSpec],
    voices: list[tuple[str, Voice]],
    stt: Any,
    progress: Callable[[str], None] = lambda _m: None,
    wide_stt: Any = None,
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    async with httpx.AsyncClient() as http:
        for voice in voices:
            for i, line in enumerate(lines):
                spec = specs[line.domain]
                record = await run_line(line, spec, voice, stt, http, wide_stt)
                records.append(record)
                progress(f"{voice[0]} {i + 1}/{len(lines)}: {record['after']['hyp']!r}")
    return records


def build_report(
    records: list[dict[str, Any]], *, stt_model: str, source: str, seconds: float
) -> dict[str, Any]:
    conditions = [c for c in CONDITIONS if records and c in records[0]]
    voices = sorted({r["voice"] for r in records})
    domains = sorted({r["domain"] for r in records})
    n_lines = len({(r["domain"], r["text"]) for r in records})

    by_set: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_set.setdefault(line_set(r), []).append(r)
    by_set = {name: by_set[name] for name in sorted(by_set, key=_set_order)}

    def rows(subset: list[dict[str, Any]]) -> dict[str, Any]:
        return {c: summary_row(subset, c) for c in conditions}

    def on_text(subset: list[dict[str, Any]]) -> float | None:
        known = [r for r in subset if "text_intent" in r]
        return sum(r["text_intent"] == r["intent"] for r in known) / len(known) if known else None

    return {
        "bench": "understanding",
        "source": source,
        "stt_model": stt_model,
        "n_lines": n_lines,
        "n_utterances": len(records),
        "voices": voices,
        "domains": domains,
        "seconds": round(seconds, 1),
        "summary": rows(records),
        "by_voice": {v: rows([r for r in records if r["voice"] == v]) for v in voices},
        "by_domain": {d: rows([r for r in records if r["domain"] == d]) for d in domains},
        "by_set": {name: rows(subset) for name, subset in by_set.items()},
        "text_intent_accuracy": {name: on_text(subset) for name, subset in by_set.items()},
        "final_decode_ms": decode_times(records),
        "records": records,
    }


def _set_order(name: str) -> tuple[int, str]:
    return (0 if name == "tuned" else 1 if name == "held_out" else 2, name)


def decode_times(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and p90 of the finals' decode time per timed condition, and the median of the
    per-utterance difference to `after` (the pairs ran back to back)."""
    out: dict[str, Any] = {}
    timed = [r["decode_ms"] for r in records if "decode_ms" in r]
    for name in sorted({k for t in timed for k in t}):
        ms = np.array([t[name] for t in timed if name in t])
        paired = np.array([t[name] - t["after"] for t in timed if name in t and "after" in t])
        out[name] = {
            "n": len(ms),
            "median": round(float(np.median(ms)), 1),
            "p90": round(float(np.percentile(ms, 90)), 1),
            "median_minus_after": round(float(np.median(paired)), 1),
        }
    return out


def run(
    settings: Any, lines_path: Path, limit: int | None, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Load the node's engines and the lines, run every condition, return the report."""
    from pipeline.stt import SttEngine
    from pipeline.tts import TtsEngine

    specs, lines = load_lines(lines_path)
    lines = lines[:limit] if limit else lines
    stt = SttEngine(settings.stt)
    wide = SttEngine(msgspec.structs.replace(settings.stt, beam_size=WIDE_BEAM))
    tts = TtsEngine(settings.tts)
    for engine in (stt, wide):
        engine.warm_up()
        engine.start()
    started = time.perf_counter()
    try:
        voices: list[tuple[str, Voice]] = [("piper", piper_voice(tts)), ("espeak-ng", espeak)]
        records = asyncio.run(run_bench(specs, lines, voices, stt, progress, wide))
    finally:
        stt.close()
        wide.close()
        tts.close()
    model = settings.stt.model or "embedded Whisper tiny.en"
    stt_model = f"{model}, {settings.stt.compute_type}, beam {settings.stt.beam_size}"
    return build_report(
        records,
        stt_model=stt_model,
        source=str(lines_path),
        seconds=time.perf_counter() - started,
    )
