"""AgentSpec: everything that defines an agent, as a validated msgspec Struct (TOML or JSON)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from agents.flow.spec import FlowSpec
from agents.mcp_spec import McpServerSpec, servers_problem
from agents.vocabulary import check_vocabulary

Name = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


RecordingMode = Literal["off", "on", "on_consent"]
"""Whether a call is recorded: never, always, or after the agent's disclosure line."""


class _Spec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class TurnSettings(_Spec, frozen=True):
    """How the node decides the caller's turn is over, and how it handles silence."""

    silence_ms: Annotated[int, Meta(ge=100, le=5000)] = 600
    """Silence after speech that ends a turn."""
    complete_silence_ms: Annotated[int, Meta(ge=50, le=5000)] = 400
    """Shorter window when the partial transcript is a complete sentence."""
    incomplete_silence_ms: Annotated[int, Meta(ge=100, le=10000)] = 1500
    """Longer window after a filler, a conjunction or an unfinished digit string."""
    list_silence_ms: Annotated[int, Meta(ge=100, le=10000)] = 1000
    """Window when the line may be the first items of a list ("Monday, Wednesday.", or "I could
    do Monday." after "What day would you like to come in?"), whatever the audio model says,
    and while the recogniser has heard no words of the line yet: a caller pauses between items
    longer than `silence_ms` lets them. Never shorter than `silence_ms`. The cost: a one-word
    answer to a choice question ("Tuesday.") waits it too."""
    backchannel_ms: Annotated[int, Meta(ge=0, le=5000)] = 600
    """Speech shorter than this while the agent speaks does not interrupt (barge-in threshold)."""
    backchannel_max_ms: Annotated[int, Meta(ge=0, le=10000)] = 1500
    """Speech over the agent past `backchannel_ms` whose words so far only acknowledge it
    ("mhm", "okay", or none yet) holds the agent paused until its words say more (a
    barge-in) or it lasts this long (a barge-in too); a backchannel that ends first lets the
    agent go on. At or under `backchannel_ms` the threshold alone decides."""
    no_input_s: Annotated[float, Meta(ge=1, le=600)] = 8.0
    """Reprompt after this long without caller speech."""
    max_no_input: Annotated[int, Meta(ge=1, le=20)] = 3
    """End the call after this many consecutive no-input prompts."""
    reprompt_line: str = "Are you still there?"
    """Said after `no_input_s` of silence when the agent itself has nothing to say then."""
    max_duration_s: Annotated[float, Meta(ge=10, le=86400)] = 900.0
    """Hang up after this long."""
    min_speech_ms: Annotated[int, Meta(ge=0, le=2000)] = 120
    """Speech shorter than this (clicks, breaths) is not a turn."""
    preemptive: bool = True
    """Start the reply when the caller pauses (agents that allow it), play it at the endpoint."""
    audio_model: bool = True
    """At a pause, ask the node's audio end-of-turn model (Smart Turn) whether the caller has
    finished, when the node has one (`turn_model.enabled`)."""
    model_complete_ms: Annotated[int, Meta(ge=50, le=5000)] = 200
    """Silence that ends the turn when the audio model says "complete" with confidence (never
    longer than `complete_silence_ms`)."""
    model_complete_threshold: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.7
    """The model's probability at or above which "complete" is confident."""
    model_incomplete_threshold: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.2
    """At or below this the caller is taken to go on: the turn waits `incomplete_silence_ms`."""
    echo_guard: bool = True
    """Inbound audio that is the agent's own voice coming back (a speakerphone, a trunk's
    echo: the outbound audio at one delay up to 300 ms and one gain) is not caller speech, so
    the agent does not barge in on itself; the caller talking over it still does."""

    def __post_init__(self) -> None:
        if self.model_incomplete_threshold >= self.model_complete_threshold:
            raise ValueError(
                "turn.model_incomplete_threshold must be below turn.model_complete_threshold"
            )

    closing_grace_ms: Annotated[int, Meta(ge=0, le=10000)] = 1500
    """A hang-up or transfer waits this long after the closing line; caller words during the
    line or this time cancel it and the conversation goes on."""


DEFAULT_MACHINE_SPEECH_MS = 3000
"""`[amd] machine_speech_ms` when it is not set (and `decision_ms` is not sooner)."""


class AmdSettings(_Spec, frozen=True):
    """Answering-machine detection on outbound calls (`pipeline/amd.py`): the first seconds
    after the answer are classified human, machine or unknown, and a machine either gets a
    hang-up or, after its beep (or its greeting's end), the voicemail message."""

    enabled: bool = True
    """Classify the start of this agent's outbound calls (inbound calls never are). On by
    default: a screened call's agent speaks once the far end is known to be a person (the
    silence after their "Hello?", `decision_ms` at most; its greeting is synthesized while
    the detector listens)."""
    decision_ms: Annotated[int, Meta(ge=500, le=10000)] = 3500
    """Decide by this long after the answer; undecided then: machine if a long greeting is
    still going on, human if someone spoke briefly, unknown if nobody spoke."""
    machine_speech_ms: Annotated[int, Meta(ge=500, le=10000)] | None = None
    """One greeting spoken without a longer pause for this long is a machine's (unless its
    words are a person's answer); unset: 3000, or `decision_ms` if that is sooner. A machine
    decided later costs nothing (its message waits for the beep), and the time lets the
    transcript catch a long answer's "who's calling"."""
    human_silence_ms: Annotated[int, Meta(ge=200, le=5000)] = 800
    """Silence after a short first utterance ("Hello?") that makes it a human's."""
    on_machine: Literal["hang_up", "leave_message"] = "hang_up"
    voicemail_message: str = ""
    """What `leave_message` says. A template: `$name`-style variables are filled in from the
    call's variables when it has them (campaign contacts); unknown ones stay as written."""
    beep_wait_ms: Annotated[int, Meta(ge=0, le=10000)] = 2500
    """After a machine's greeting, how long a silence without a beep starts the message."""
    max_greeting_s: Annotated[float, Meta(ge=5, le=120)] = 30.0
    """The longest wait for a machine's greeting and beep before the message starts anyway."""

    def __post_init__(self) -> None:
        if self.on_machine == "leave_message" and not self.voicemail_message.strip():
            raise ValueError('amd.on_machine = "leave_message" needs an amd.voicemail_message')
        if self.machine_speech_ms is not None and self.machine_speech_ms >= self.decision_ms:
            raise ValueError("amd.machine_speech_ms must be below amd.decision_ms")

    @property
    def long_greeting_ms(self) -> int:
        """`machine_speech_ms`, or its default."""
        if self.machine_speech_ms is not None:
            return self.machine_speech_ms
        return min(DEFAULT_MACHINE_SPEECH_MS, self.decision_ms)


class LlmSettings(_Spec, frozen=True):
    """An OpenAI-compatible chat-completions endpoint and where its API key comes from.

    Tenants' agents name a tenant secret (`api_key_secret`, stored with `POST /v1/secrets`);
    only the operator's file agents (`agents.dir`, the embedded ones) may name a variable of
    the node's environment (`api_key_env`). A tenant's `base_url` must reach a public address
    (or one in the operator's `analytics.url_allowlist`), checked when saved and at every call.
    """

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "default"
    api_key_secret: Annotated[str, Meta(pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$")] = ""
    """The tenant secret holding the key."""
    api_key_env: str = ""
    """The environment variable holding the key (operator file agents only)."""
    max_tool_calls: Annotated[int, Meta(ge=1, le=32)] = 8
    """Tool calls the model may make per reply; more are refused (the model is told)."""
    temperature: Annotated[float, Meta(ge=0, le=2)] = 0.3
    max_tokens: Annotated[int, Meta(ge=1, le=8192)] = 300
    first_token_timeout_s: Annotated[float, Meta(gt=0, le=60)] = 2.5
    total_timeout_s: Annotated[float, Meta(gt=0, le=600)] = 20.0
    fallback_line: str = "Sorry, I'm having trouble right now. Could you say that again?"
    speculate: bool | None = None
    """Start the reply while the caller pauses (with `turn.preemptive`), before the turn is
    surely over: its words are held until the endpoint confirms the turn, dropped (the request
    cancelled) if the caller goes on, and a tool call with side effects waits for the endpoint.
    None: on when none of the agent's tools has side effects (see `ToolSpec.read_only`)."""

    def __post_init__(self) -> None:
        if self.api_key_secret and self.api_key_env:
            raise ValueError("give one of `api_key_secret` and `api_key_env`, not both")


class ToolSpec(_Spec, frozen=True):
    """A tool the agent may call: a built-in (`end_call`, `transfer_call`, `send_dtmf`) or HTTP."""

    name: Annotated[str, Meta(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str = ""
    kind: Literal["builtin", "http"] = "builtin"
    url: str = ""
    method: Literal["GET", "POST"] = "POST"
    parameters: dict[str, object] = msgspec.field(default_factory=dict)
    """JSON schema of the arguments (for HTTP tools)."""
    timeout_s: Annotated[float, Meta(gt=0, le=60)] = 5.0
    read_only: bool = False
    """The HTTP tool only reads (no effects outside the call: a lookup, not a booking): it may
    run in a reply started before the caller's turn is surely over (`llm.speculate`). Tools
    with side effects, and every built-in (they act on the call), wait for the endpoint."""

    def __post_init__(self) -> None:
        if self.kind == "builtin" and self.read_only:
            raise ValueError(f"built-in tool {self.name!r} acts on the call; it is not read_only")


class AgentSpec(_Spec, frozen=True):
    name: Name
    kind: Literal["flow", "llm"] = "flow"
    description: str = ""
    language: str = "en"
    greeting: str = ""
    prompt: str = ""
    """System prompt (LLM agents)."""
    flow: FlowSpec | None = None
    voice: str = ""
    """Piper voice path; empty: the node's default voice."""
    stt_model: str = ""
    """Whisper model dir; empty: the node's default model."""
    vocabulary: list[str] = msgspec.field(default_factory=list)
    """Names callers say: the business, people, services, places, products (at most 50
    terms of up to 5 words). The recogniser gets the first ones as context (~160 characters),
    and the flow matcher snaps near misses to them ("metal to metal" → "Delta Dental")."""
    turn: TurnSettings = msgspec.field(default_factory=TurnSettings)
    tools: list[ToolSpec] = msgspec.field(default_factory=list)
    llm: LlmSettings | None = None
    mcp: tuple[McpServerSpec, ...] = ()
    """MCP tool servers (`[[mcp]]` tables, `agents/mcp_spec.py`); their tools join `tools`."""
    transfer_target: str = ""
    """Where `transfer_call` without a target goes (a SIP URI or number)."""
    amd: AmdSettings = msgspec.field(default_factory=AmdSettings)
    """Answering-machine detection and voicemail on outbound calls (`[amd]`)."""
    action_failed_line: str = (
        "Sorry, I couldn't do that just now. Is there anything else I can help you with?"
    )
    """Said when a transfer, DTMF or tool fails and the agent has not said anything about it;
    the conversation then goes on."""
    recording: RecordingMode = "off"
    """Record the call, caller and agent on two channels (`on`); `on_consent`: the same, with
    `recording_disclosure` said first, before the greeting. Kept under `node.data_dir`."""
    recording_disclosure: str = "This call is recorded."

    def __post_init__(self) -> None:
        if self.kind == "flow" and self.flow is None:
            raise ValueError("a flow agent needs a `flow` section")
        if self.kind == "llm" and self.llm is None:
            raise ValueError("an llm agent needs an `llm` section")
        if self.recording == "on_consent" and not self.recording_disclosure.strip():
            raise ValueError("recording = 'on_consent' needs a recording_disclosure line")
        if (problem := servers_problem(self.mcp)) is not None:
            raise ValueError(problem)
        problems = check_vocabulary(self.vocabulary)
        if problems:
            raise ValueError("; ".join(problems[:3]))
