"""Sans-IO SDP edits for codec preference.

pjmedia answers an offer in the *offerer's* codec order (RFC 3264's recommendation), so the
node's `sip.codecs` order would only count for the calls it places. `prefer_local_codec` trims
the node's own (capability) SDP to the single audio codec the node prefers among those the
offer carries, before pjmedia negotiates: the answer then uses the node's preference. DTMF
(`telephone-event`) formats are kept.
"""

from __future__ import annotations

from typing import Final

STATIC: Final = {
    "0": "pcmu/8000",
    "3": "gsm/8000",
    "4": "g723/8000",
    "8": "pcma/8000",
    "9": "g722/8000",
    "18": "g729/8000",
}
"""RFC 3551 static payload types an offer may use without an rtpmap."""


def _audio_formats(lines: list[str]) -> tuple[int, list[str], dict[str, str]]:
    """(index of the first m=audio line or -1, its formats, pt → lower-case `name/rate`)."""
    index, formats, names = -1, [], {}
    for i, line in enumerate(lines):
        if line.startswith("m="):
            if index >= 0:
                break  # only the first audio section
            if line.startswith("m=audio "):
                index, formats = i, line.split()[3:]
        elif index >= 0 and line.startswith("a=rtpmap:"):
            pt, _, name = line[len("a=rtpmap:") :].partition(" ")
            enc = name.strip().lower().split("/")
            names[pt] = "/".join(enc[:2])
    for pt in formats:
        names.setdefault(pt, STATIC.get(pt, ""))
    return index, formats, names


def prefer_local_codec(local: str, remote: str) -> str:
    """`local` with its first audio section offering only the first of its codecs (in its
    own order) that `remote` offers, plus telephone-event; unchanged when none is shared
    (negotiation then fails: 488) or either side has no audio section."""
    eol = "\r\n" if "\r\n" in local else "\n"
    lines = local.replace("\r\n", "\n").split("\n")
    index, formats, names = _audio_formats(lines)
    _, remote_formats, remote_names = _audio_formats(remote.replace("\r\n", "\n").split("\n"))
    if index < 0 or not remote_formats:
        return local
    offered = {remote_names[pt] for pt in remote_formats} - {""}
    events = [pt for pt in formats if names.get(pt, "").startswith("telephone-event/")]
    chosen = next((pt for pt in formats if pt not in events and names[pt] in offered), None)
    if chosen is None:
        return local
    keep = {chosen, *events}
    dropped = set(formats) - keep
    head = lines[index].split()[:3]
    out = [*lines[:index], " ".join([*head, *(pt for pt in formats if pt in keep)])]
    section_ended = False
    for line in lines[index + 1 :]:
        section_ended = section_ended or line.startswith("m=")
        if not section_ended and line.startswith(("a=rtpmap:", "a=fmtp:")):
            pt = line.split(":", 1)[1].split(" ", 1)[0]
            if pt in dropped:
                continue
        out.append(line)
    return eol.join(out)
