"""An Asterisk Manager Interface double: the real AMI line protocol over TCP on loopback.

It greets with `Asterisk Call Manager/9.0.0`, reads actions (`Key: value` lines, CRLF, a blank
line ends one), answers them with `ActionID` echoed, and sends events to logged-in
connections. Login checks the username and secret (a refusal is answered, then the connection
closed, as Asterisk does). Originate behaves per `originate_outcome`: "answer" (Newchannel with
the requested ChannelId as Uniqueid, VarSet of each Variable, OriginateResponse Success),
a failure: "busy", "no_answer", "congestion" or "hung_up" (OriginateResponse Failure with
Asterisk's reason, 5, 3, 8 or 1, and the channel's Hangup with its cause; the Hangup first
when `hangup_first`), or "error" (an error response).
Redirect, Hangup, Setvar and PlayDTMF act on channels the double knows (else "No such channel").
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

EOL = "\r\n"

FAILURES = {
    "busy": ("5", "17", "User busy"),
    "no_answer": ("3", "19", "No answer"),
    "congestion": ("8", "34", "Circuit/channel congestion"),
    "hung_up": ("1", "21", "Call Rejected"),
}
"""A failed originate: OriginateResponse's Reason (the last control frame: AST_CONTROL_BUSY,
_RINGING, _CONGESTION, _HANGUP) and the channel's Hangup cause and text."""


@dataclass
class Channel:
    name: str
    uniqueid: str
    variables: dict[str, str] = field(default_factory=dict)


def encode(fields: list[tuple[str, str]]) -> bytes:
    return ("".join(f"{k}: {v}{EOL}" for k, v in fields) + EOL).encode()


class AmiDouble:
    def __init__(self, username: str = "voicenode", secret: str = "s3cret") -> None:
        self.username = username
        self.secret = secret
        self.actions: list[dict[str, list[str]]] = []
        self.logins = 0
        self.failed_logins = 0
        self.channels: dict[str, Channel] = {}
        self.originate_outcome = "answer"
        self.hangup_first = False
        self.unanswered: set[str] = set()  # action names (lower case) left without a response
        self._writers: set[asyncio.StreamWriter] = set()
        self._authed: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        self.port = 0

    async def __aenter__(self) -> AmiDouble:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self.drop_all()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def connections(self) -> int:
        return len(self._writers)

    # -- what tests use ----------------------------------------------------------------------
    async def wait_until(self, predicate: object, limit_s: float = 5.0) -> None:
        assert callable(predicate)
        async with asyncio.timeout(limit_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def named(self, action: str) -> list[dict[str, list[str]]]:
        return [a for a in self.actions if a["action"][0].lower() == action.lower()]

    def add_channel(self, name: str, uniqueid: str) -> Channel:
        channel = self.channels[uniqueid] = Channel(name, uniqueid)
        return channel

    def emit(self, event: str, **headers: str) -> None:
        fields = [("Event", event), ("Privilege", "call,all")]
        fields += [(k.replace("_", "-") if k == "Cause_txt" else k, v) for k, v in headers.items()]
        data = encode(fields)
        for writer in list(self._authed):
            if not writer.is_closing():
                writer.write(data)

    def hang_up(self, uniqueid: str, cause: str = "16", text: str = "Normal Clearing") -> None:
        channel = self.channels.pop(uniqueid)
        self.emit("Hangup", Channel=channel.name, Uniqueid=uniqueid, Cause=cause, Cause_txt=text)

    async def drop_all(self) -> None:
        """Close every connection at once (Asterisk restarting)."""
        writers = list(self._writers)
        for writer in writers:
            writer.close()
        for writer in writers:
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    # -- the protocol ------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self._changed.set()
        try:
            writer.write(f"Asterisk Call Manager/9.0.0{EOL}".encode())
            fields: dict[str, list[str]] = {}
            while line := await reader.readline():
                text = line.decode().rstrip("\r\n")
                if text:
                    key, _, value = text.partition(": ")
                    fields.setdefault(key.lower(), []).append(value)
                    continue
                if fields:
                    self.actions.append(fields)
                    self._changed.set()
                    if not await self._act(fields, writer):
                        break
                fields = {}
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            self._authed.discard(writer)
            self._tasks.discard(task)
            writer.close()
            self._changed.set()

    async def _act(self, a: dict[str, list[str]], writer: asyncio.StreamWriter) -> bool:
        name = a["action"][0].lower()
        action_id = a.get("actionid", [""])[0]

        def reply(response: str, **headers: str) -> None:
            fields = [("Response", response), ("ActionID", action_id)]
            writer.write(encode(fields + list(headers.items())))

        if name == "login":
            if a.get("username") == [self.username] and a.get("secret") == [self.secret]:
                self.logins += 1
                self._authed.add(writer)
                reply("Success", Message="Authentication accepted")
                writer.write(encode([("Event", "FullyBooted"), ("Status", "Fully Booted")]))
                return True
            self.failed_logins += 1
            reply("Error", Message="Authentication failed")
            await writer.drain()
            return False
        if name in self.unanswered:
            return True
        if writer not in self._authed:
            reply("Error", Message="Permission denied")
            return True
        match name:
            case "ping":
                reply("Success", Ping="Pong")
            case "originate":
                self._originate(a, reply)
            case "redirect" | "hangup" | "setvar" | "playdtmf":
                channel = self._find(a.get("channel", [""])[0])
                if channel is None:
                    reply("Error", Message="No such channel")
                else:
                    reply("Success", Message=f"{name} done")
                    if name == "hangup":
                        self.hang_up(channel.uniqueid, a.get("cause", ["16"])[0])
            case _:
                reply("Error", Message="Invalid/unknown command")
        return True

    def _find(self, name: str) -> Channel | None:
        return next((c for c in self.channels.values() if c.name == name), None)

    def _originate(self, a: dict[str, list[str]], reply: object) -> None:
        assert callable(reply)
        if self.originate_outcome == "error":
            reply("Error", Message="Originate failed")
            return
        reply("Success", Message="Originate successfully queued")
        uniqueid = a.get("channelid", [f"1700000000.{next(self._ids)}"])[0]
        name = f"{a['channel'][0]}-{next(self._ids):08x}"
        action_id = a.get("actionid", [""])[0]
        channel = self.add_channel(name, uniqueid)
        self.emit("Newchannel", Channel=name, Uniqueid=uniqueid, ChannelStateDesc="Down")
        if (failure := FAILURES.get(self.originate_outcome)) is not None:
            reason, cause, text = failure
            if self.hangup_first:
                self.hang_up(uniqueid, cause, text)
            self.emit(
                "OriginateResponse", ActionID=action_id, Response="Failure", Channel=name,
                Uniqueid=uniqueid, Reason=reason,
            )  # fmt: skip
            if not self.hangup_first:
                self.hang_up(uniqueid, cause, text)
            return
        for item in a.get("variable", []):
            key, _, value = item.partition("=")
            channel.variables[key] = value
            self.emit("VarSet", Channel=name, Uniqueid=uniqueid, Variable=key, Value=value)
        self.emit(
            "OriginateResponse", ActionID=action_id, Response="Success", Channel=name,
            Uniqueid=uniqueid, Reason="4",
        )  # fmt: skip
