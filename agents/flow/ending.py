"""Irreversible routes: which ones end or transfer the call, and whether a match is sure enough.

Ending or transferring a call is the one thing the flow cannot take back, and the caller's words
come through speech recognition ("my tooth hurts" heard as "my two thirds"). A route that leads
there (in its own actions, or through the nodes it goes to before the flow waits again) is taken
on words only with a high score and a clear lead over every candidate that would not end the
call the same way; otherwise the flow asks first or takes the line as not understood.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from agents.flow.intents import IntentMatch, IntentMatcher
from agents.flow.spec import Action, EndingSpec, FlowSpec, Route

Ending = Literal["end", "transfer"]
Verdict = Literal["go", "confirm", "no_match"]


def route_ending(flow: FlowSpec, route: Route) -> Ending | None:
    """How taking `route` ends the call before the flow waits for the caller again, if it does."""
    steps: Sequence[Action] = route.do
    goto = route.goto
    seen: set[str] = set()
    while True:
        for step in steps:
            if step.ask is not None:
                return None  # waits for the caller (or moves on with what they said)
            if step.transfer is not None:
                return "transfer"
            if step.end is not None:
                return "end"
            if step.goto is not None:
                goto = step.goto  # the rest of the list is dropped
                break
        if not goto or goto in seen or goto not in flow.nodes:
            return None  # the flow waits at a question (or loops: the agent reports that)
        seen.add(goto)
        steps, goto = flow.nodes[goto].do, ""


def verdict(
    settings: EndingSpec,
    match: IntentMatch,
    ranked: Sequence[tuple[str, float]],
    endings: dict[str, Ending | None],
    unexplained: int = 0,
    after: int = 0,
) -> Verdict:
    """Whether a match whose route ends the call may be acted on (`endings`: each candidate's
    ending; `unexplained`: content words of the line the intent does not account for, `after`:
    how many of them come after the last word it does). Candidates that end the call the same
    way do not count against the lead. A caller who goes on past the words that end the call
    is not done: two or more words after them make it unsure ("Nothing else on the beat, just
    teens.", a misheard order that opens with a goodbye's "nothing else"), while words before
    them do not ("actually never mind, bye")."""
    ending = endings.get(match.intent)
    if ending is None:
        return "go"
    rivals = [s for intent, s in ranked if endings.get(intent) != ending]
    margin = match.score - (rivals[0] if rivals else 0.0)
    sure = match.score >= settings.min_score and margin >= settings.min_margin
    sure = sure and unexplained <= settings.max_unexplained and after < 2
    return "go" if sure else settings.unsure


class EndingCheck:
    """One flow's check of matches on the caller's words (build once per call)."""

    def __init__(self, flow: FlowSpec, matcher: IntentMatcher) -> None:
        self._flow = flow
        self._matcher = matcher

    def check(
        self, text: str, match: IntentMatch, routes: dict[str, Route]
    ) -> tuple[Verdict, Ending | None]:
        """The verdict on `match` among `routes`, and how its route ends the call (if it does)."""
        endings = {intent: route_ending(self._flow, route) for intent, route in routes.items()}
        ending = endings[match.intent]
        if ending is None:
            return "go", None
        # Rivals at full weight: the matcher's topic rules choose between readings, they never
        # widen the lead of one that ends the call.
        ranked = self._matcher.rank(text, list(routes), strict=True)
        explained = self._matcher.explained(match.intent, text)
        unexplained = explained.count(False)
        after = explained[::-1].index(True) if True in explained else 0  # words past the last
        sure = verdict(self._flow.ending, match, ranked, endings, unexplained, after)
        return sure, ending

    def question(self, ending: Ending) -> str:
        settings = self._flow.ending
        return settings.confirm_end if ending == "end" else settings.confirm_transfer
