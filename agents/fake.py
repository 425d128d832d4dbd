"""A scripted agent (the Agent seam's fake): replies chosen by keyword, for tests."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from agents.base import (
    Agent,
    AgentInput,
    AgentOutput,
    CallStarted,
    DtmfPressed,
    EndCall,
    Message,
    NoInput,
    TextChunk,
    Transfer,
    UserSaid,
)


class ScriptedAgent(Agent):
    """Greets, answers `replies[keyword]` for the first keyword found, ends on "bye"."""

    def __init__(
        self,
        *,
        greeting: str = "Hello, how can I help?",
        replies: dict[str, str] | None = None,
        default: str = "I see.",
        transfer_on: str = "human",
        transfer_target: str = "sip:desk@example.com",
        speculates: bool = False,
    ) -> None:
        self.speculates = speculates
        self.greeting = greeting
        self.replies = replies or {}
        self.default = default
        self.transfer_on = transfer_on
        self.transfer_target = transfer_target
        self.inputs: list[AgentInput] = []
        self.histories: list[list[Message]] = []

    @property
    def may_speculate(self) -> bool:
        return self.speculates

    async def respond(
        self, history: Sequence[Message], event: AgentInput
    ) -> AsyncGenerator[AgentOutput, None]:
        self.inputs.append(event)
        self.histories.append(list(history))
        match event:
            case CallStarted():
                yield TextChunk(self.greeting)
            case NoInput(count=n):
                yield TextChunk(f"Are you still there? ({n})")
            case DtmfPressed(digits=d):
                yield TextChunk(f"You pressed {d}.")
            case UserSaid(text=text):
                low = text.lower()
                if "bye" in low:
                    yield TextChunk("Goodbye!")
                    yield EndCall("completed")
                    return
                if self.transfer_on in low:
                    yield TextChunk("Transferring you now.")
                    yield Transfer(self.transfer_target)
                    return
                for key, reply in self.replies.items():
                    if key in low:
                        for word in reply.split(" "):
                            yield TextChunk(word + " ")
                        return
                yield TextChunk(self.default)
