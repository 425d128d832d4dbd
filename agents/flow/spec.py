"""Flow specs: a deterministic dialog graph of nodes, intents, slots and actions.

Written by people in TOML (the `[flow]` section of an agent spec)::

    [flow]
    start = "main"

    [flow.intents.hours]
    examples = ["what are your hours", "when are you open"]
    keywords = ["hours", "open"]

    [flow.slots.day]
    type = "day"
    prompt = "What day works for you?"

    [flow.nodes.main]
    prompt = "How can I help you today?"
    routes = [
      { intent = "hours", say = "We're open nine to five.", goto = "main" },
      { intent = "book", goto = "booking" },
    ]

    [flow.nodes.booking]
    do = [{ ask = "day" }, { say = "Booked for {day}." }, { end = true }]

Entering a node runs its `do` actions in order (an `ask` waits for the caller when the slot is
empty), then speaks its `prompt` and waits for one of its `routes` (or a flow-wide route in
`flow.routes`). A route runs `say`, then `do`, then `goto`; without a `goto` the caller is
brought back to the question they were at. `{slot}` in any spoken text is the slot's value.

Every reference (node, slot, intent, webhook, `{slot}` placeholder) is checked when the spec
is loaded; errors name the field, e.g. ``flow.nodes.main.routes[1].goto: unknown node 'bok'``.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

SlotType = Literal["day", "time", "number", "digits", "yes_no", "name", "free_text"]

BUILTIN_INTENTS = ("yes", "no")
"""Intents that need no definition: they match what the yes/no slot extractor understands."""

_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_DTMF_KEY = re.compile(r"^[0-9*#]{1,16}$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Part(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class IntentSpec(_Part, frozen=True):
    """Something the caller may want, recognised from example phrases and keywords."""

    examples: list[str] = []
    """Phrases a caller might say; matched by word overlap (robust to missing words)."""
    keywords: list[str] = []
    """Words or short phrases that on their own are enough to recognise the intent."""
    threshold: Annotated[float, Meta(gt=0, le=1)] | None = None
    """Minimum match score (0..1); default: `flow.match_threshold`."""


class SlotSpec(_Part, frozen=True):
    """A value the flow collects from the caller."""

    type: SlotType
    prompt: str
    """The question that asks for it."""
    reprompt: str = ""
    """Said instead of the default reprompt + `prompt` when the caller is silent."""
    invalid: str = ""
    """Said (before `prompt`) when the answer is not understood; default: `flow.no_match`."""
    min: float | None = None
    """Smallest accepted value (number slots)."""
    max: float | None = None
    """Largest accepted value (number slots)."""
    min_digits: Annotated[int, Meta(ge=1, le=32)] | None = None
    """Fewest digits accepted (digits slots: phone, card and order numbers; default 3)."""
    max_digits: Annotated[int, Meta(ge=1, le=32)] | None = None
    """Most digits accepted (digits slots; default 20)."""
    readback: str | None = None
    """Digits slots: the line that reads the number back (in groups, one digit at a time)
    before the flow goes on, e.g. ``"That's {phone}. Is that right?"``; yes goes on, no asks
    again. Default: ``"That's {<slot>}. Is that right?"``; ``""``: no readback."""
    eager: bool | None = None
    """Fill from what the caller already said in the turn that led to the question (so
    "book me for Tuesday at 2 pm" fills day and time). Default: true for day and time."""
    sensitive: bool = False
    """A card number, PIN or CVV: the recording is muted while it is asked, its keys are shown
    only as a placeholder (`[CARD]`, else `[REDACTED]`), `{slot}` says its last four digits."""

    @property
    def digit_limits(self) -> tuple[int, int]:
        """(fewest, most) digits a digits slot accepts."""
        return (self.min_digits or 3, self.max_digits or 20)

    @property
    def is_eager(self) -> bool:
        return self.eager if self.eager is not None else self.type in ("day", "time")


class Action(_Part, frozen=True):
    """One step; exactly one field is set: ``{ say = "..." }``, ``{ ask = "slot" }``,
    ``{ goto = "node" }``, ``{ transfer = "sip:..." }`` (``""``: the agent's
    `transfer_target`), ``{ end = true }`` (or a reason string), ``{ webhook = "name" }``,
    ``{ clear = ["slot", ...] }``, ``{ recording = "pause" }`` (or ``"resume"``: mute the
    call's recording, both channels, from once the words before it have played)."""

    say: str | None = None
    ask: str | None = None
    goto: str | None = None
    transfer: str | None = None
    end: bool | str | None = None
    webhook: str | None = None
    clear: list[str] | None = None
    recording: Literal["pause", "resume"] | None = None

    @property
    def verbs(self) -> list[str]:
        return [name for name in self.__struct_fields__ if getattr(self, name) is not None]


class Route(_Part, frozen=True):
    """When the caller's turn matches `intent`: say, do, then go (or return to the question)."""

    intent: str
    say: str = ""
    do: list[Action] = []
    goto: str = ""


class NodeSpec(_Part, frozen=True):
    """A point in the conversation."""

    do: list[Action] = []
    """Run on entry, in order."""
    prompt: str = ""
    """The question asked once `do` is done (and asked again when the caller comes back)."""
    reprompt: str = ""
    """Said instead of the default reprompt + `prompt` when the caller is silent."""
    no_match: str = ""
    """Said instead of `flow.no_match` + `prompt` when no route matches."""
    routes: list[Route] = []
    dtmf: dict[str, str] = {}
    """Keys pressed → intent, e.g. ``{ "1" = "hours", "2" = "book" }``."""


class WebhookSpec(_Part, frozen=True):
    """An HTTP POST of ``{"call_id", "agent", "webhook", "slots"}`` as JSON. A JSON reply may
    carry ``"say"`` (spoken) and ``"slots"`` (string values, merged into the call's slots)."""

    url: str
    timeout_s: Annotated[float, Meta(gt=0, le=30)] = 5.0
    slots: list[str] = []
    """Slots to send; empty: all collected slots."""
    on_error: str = ""
    """Said when the request fails (the conversation goes on)."""


class EndingSpec(_Part, frozen=True):
    """How sure the flow must be before a caller's words end or transfer the call (keys and
    `give_up` are not checked). Below the bar it asks (`unsure = "confirm"`) or takes the line
    as not understood (`"no_match"`)."""

    min_score: Annotated[float, Meta(gt=0, le=1)] = 0.85
    """A keyword alone (0.8) is not enough; a keyword with an example, or an example said
    (nearly) verbatim, is."""
    min_margin: Annotated[float, Meta(ge=0, le=1)] = 0.15
    """Lead over the best candidate that would not end the call the same way."""
    max_unexplained: Annotated[int, Meta(ge=0, le=20)] = 2
    """Most words of the line the intent does not account for ("goodbye, wait, one more
    thing" is not a sure goodbye)."""
    unsure: Literal["confirm", "no_match"] = "confirm"
    confirm_end: str = "Did you want to end the call?"
    confirm_transfer: str = "Did you want me to put you through?"
    declined: str = "Okay."
    """Said (then the question the caller was at) when they answer no."""


class FlowSpec(_Part, frozen=True):
    start: str
    """The node entered after the greeting."""
    nodes: dict[str, NodeSpec]
    intents: dict[str, IntentSpec] = {}
    slots: dict[str, SlotSpec] = {}
    routes: list[Route] = []
    """Routes that work from any node (a node's own route for the same intent replaces one; on
    equal match scores the node's routes win)."""
    dtmf: dict[str, str] = {}
    """Keys → intent from any node (e.g. ``{ "0" = "human" }``)."""
    webhooks: dict[str, WebhookSpec] = {}
    match_threshold: Annotated[float, Meta(gt=0, le=1)] = 0.6
    reprompt: str = "Sorry, I didn't hear anything."
    """Said before the current question when the caller is silent."""
    no_match: str = "Sorry, I didn't catch that."
    """Said before the current question when the caller's answer is not understood."""
    max_no_match: Annotated[int, Meta(ge=1, le=20)] = 3
    """After this many misunderstood answers in a row, run `give_up` (if any)."""
    give_up: list[Action] = []
    ending: EndingSpec = EndingSpec()

    def __post_init__(self) -> None:
        problems = _Checker(self).run()
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise ValueError("; ".join(problems[:3]) + more)

    def transfer_targets(self) -> list[tuple[str, str]]:
        """(path, target) of every ``{ transfer = "..." }`` naming its own target."""
        return [(f"{p}.transfer", a.transfer) for p, a in _all_actions(self) if a.transfer]

    def uses_default_transfer(self) -> bool:
        """True when some action is ``{ transfer = "" }`` (needs the agent's transfer_target)."""
        return any(a.transfer == "" for _path, a in _all_actions(self))


def placeholders(text: str) -> list[str]:
    """The `{slot}` names used in `text`."""
    return _PLACEHOLDER.findall(text)


def _all_actions(flow: FlowSpec) -> list[tuple[str, Action]]:
    out: list[tuple[str, Action]] = []

    def add(path: str, actions: list[Action]) -> None:
        out.extend((f"{path}[{i}]", a) for i, a in enumerate(actions))

    def add_routes(path: str, routes: list[Route]) -> None:
        for i, route in enumerate(routes):
            add(f"{path}[{i}].do", route.do)

    for name, node in flow.nodes.items():
        add(f"flow.nodes.{name}.do", node.do)
        add_routes(f"flow.nodes.{name}.routes", node.routes)
    add_routes("flow.routes", flow.routes)
    add("flow.give_up", flow.give_up)
    return out


class _Checker:
    """Collects every broken reference, each message naming its field."""

    def __init__(self, flow: FlowSpec) -> None:
        self.flow = flow
        self.problems: list[str] = []

    def bad(self, path: str, why: str) -> None:
        self.problems.append(f"{path}: {why}")

    def run(self) -> list[str]:
        flow = self.flow
        for section, names in (
            ("nodes", flow.nodes),
            ("slots", flow.slots),
            ("intents", flow.intents),
            ("webhooks", flow.webhooks),
        ):
            for name in names:
                if not _IDENT.match(name):
                    self.bad(
                        f"flow.{section}.{name}",
                        "names are lowercase letters, digits and '_', starting with a letter",
                    )
        if not flow.nodes:
            self.bad("flow.nodes", "a flow needs at least one node")
        self.node_ref("flow.start", flow.start)
        self.texts("flow", {"reprompt": flow.reprompt, "no_match": flow.no_match})
        e = flow.ending
        self.texts(
            "flow.ending", {"confirm_end": e.confirm_end, "confirm_transfer": e.confirm_transfer}
        )
        for name, slot in flow.slots.items():
            self.slot(f"flow.slots.{name}", slot)
        for name, intent in flow.intents.items():
            if not intent.examples and not intent.keywords:
                self.bad(f"flow.intents.{name}", "needs `examples` or `keywords`")
        for name, hook in flow.webhooks.items():
            if not hook.url.startswith(("http://", "https://")):
                self.bad(f"flow.webhooks.{name}.url", "must be an http:// or https:// URL")
            for i, slot_name in enumerate(hook.slots):
                self.slot_ref(f"flow.webhooks.{name}.slots[{i}]", slot_name)
            self.texts(f"flow.webhooks.{name}", {"on_error": hook.on_error})
        for name, node in flow.nodes.items():
            self.node(f"flow.nodes.{name}", node)
        self.routes("flow.routes", flow.routes)
        self.dtmf("flow.dtmf", flow.dtmf)
        self.actions("flow.give_up", flow.give_up)
        return self.problems

    def node(self, path: str, node: NodeSpec) -> None:
        self.actions(f"{path}.do", node.do)
        self.texts(
            path, {"prompt": node.prompt, "reprompt": node.reprompt, "no_match": node.no_match}
        )
        self.routes(f"{path}.routes", node.routes)
        self.dtmf(f"{path}.dtmf", node.dtmf)
        last = node.do[-1] if node.do else None
        moves_on = last is not None and any(v in ("goto", "transfer", "end") for v in last.verbs)
        if not (moves_on or node.routes or node.prompt):
            self.bad(
                path,
                "the node never moves on: end `do` with goto/transfer/end, or add `routes`",
            )

    def routes(self, path: str, routes: list[Route]) -> None:
        seen: set[str] = set()
        for i, route in enumerate(routes):
            here = f"{path}[{i}]"
            self.intent_ref(f"{here}.intent", route.intent)
            if route.intent in seen:
                self.bad(f"{here}.intent", f"intent {route.intent!r} is routed twice")
            seen.add(route.intent)
            self.texts(here, {"say": route.say})
            self.actions(f"{here}.do", route.do)
            if route.goto:
                self.node_ref(f"{here}.goto", route.goto)

    def dtmf(self, path: str, keys: dict[str, str]) -> None:
        for key, intent in keys.items():
            if not _DTMF_KEY.match(key):
                self.bad(f"{path}.{key}", "keys are digits, '*' and '#'")
            self.intent_ref(f"{path}.{key}", intent)

    def actions(self, path: str, actions: list[Action]) -> None:
        for i, action in enumerate(actions):
            self.action(f"{path}[{i}]", action)

    def action(self, path: str, action: Action) -> None:
        verbs = action.verbs
        if len(verbs) != 1:
            got = ", ".join(verbs) if verbs else "none"
            self.bad(
                path,
                "an action sets exactly one of say, ask, goto, transfer, end, webhook, clear,"
                f" recording (got {got})",
            )
            return
        if action.say is not None:
            self.texts(path, {"say": action.say})
        elif action.ask is not None:
            self.slot_ref(f"{path}.ask", action.ask)
        elif action.goto is not None:
            self.node_ref(f"{path}.goto", action.goto)
        elif action.webhook is not None and action.webhook not in self.flow.webhooks:
            self.unknown(f"{path}.webhook", "webhook", action.webhook, self.flow.webhooks)
        elif action.clear is not None:
            for j, slot_name in enumerate(action.clear):
                self.slot_ref(f"{path}.clear[{j}]", slot_name)
        elif action.end is False or action.end == "":
            self.bad(f"{path}.end", "use `end = true` or a reason string")

    def slot(self, path: str, slot: SlotSpec) -> None:
        self.texts(
            path, {"prompt": slot.prompt, "reprompt": slot.reprompt, "invalid": slot.invalid}
        )
        if not slot.prompt.strip():
            self.bad(f"{path}.prompt", "must not be empty")
        if slot.type != "number" and (slot.min is not None or slot.max is not None):
            self.bad(path, "`min`/`max` apply to number slots only")
        if slot.min is not None and slot.max is not None and slot.min > slot.max:
            self.bad(f"{path}.min", "is greater than `max`")
        digit_fields = (slot.readback, slot.min_digits, slot.max_digits)
        if slot.type != "digits" and any(f is not None for f in digit_fields):
            self.bad(path, "`readback`, `min_digits` and `max_digits` apply to digits slots only")
        if slot.digit_limits[0] > slot.digit_limits[1]:
            self.bad(f"{path}.min_digits", "is greater than `max_digits`")
        self.texts(path, {"readback": slot.readback or ""})

    def texts(self, path: str, texts: dict[str, str]) -> None:
        for key, text in texts.items():
            for name in placeholders(text):
                if name not in self.flow.slots:
                    self.unknown(f"{path}.{key}", "slot", name, self.flow.slots, brace=True)

    def node_ref(self, path: str, name: str) -> None:
        if name not in self.flow.nodes:
            self.unknown(path, "node", name, self.flow.nodes)

    def slot_ref(self, path: str, name: str) -> None:
        if name not in self.flow.slots:
            self.unknown(path, "slot", name, self.flow.slots)

    def intent_ref(self, path: str, name: str) -> None:
        if name not in self.flow.intents and name not in BUILTIN_INTENTS:
            known = sorted({*self.flow.intents, *BUILTIN_INTENTS})
            self.bad(path, f"unknown intent {name!r}; known: {', '.join(known)}")

    def unknown(
        self, path: str, what: str, name: str, known: Collection[str], *, brace: bool = False
    ) -> None:
        shown = f"{{{name}}}" if brace else repr(name)
        names = ", ".join(sorted(known)) or "none defined"
        self.bad(path, f"unknown {what} {shown}; known: {names}")
