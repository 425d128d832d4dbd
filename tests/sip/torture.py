"""RFC 4475 torture messages, adapted to be sent at a node on loopback.

Each message keeps the construct its RFC 4475 section tortures (the section and file name are
given) but is rewritten to address the node (`{node}`), to carry the test's own Via sent-by
(`{via}`, so responses come back to the test's socket) and a per-run `{tag}` in its
branch/Call-ID. `{len}` is replaced by the body's length in bytes. Lines end in CRLF.

`parse` is what the sans-IO reader (`sip.message.parse_request`, then `.user`) must make of
it: a `Parsed` request, or `Refused` with a piece of the ValueError's message. `live` is the
set of final status codes the node may answer with over UDP; 0 in it (`SILENT`) means no
answer at all is acceptable too. Where pjsua2 answers differently from what RFC 4475
suggests, both are listed: pjsua2 (the library, not its `pjsua` app) has no handler for
requests outside its modules (REGISTER, unknown methods) and drops them unanswered, and its
parser drops messages it cannot read (no Via, From, To or CSeq to answer with).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Parsed:
    method: str
    user: str | None
    """The dialled number `.user` reads; None: `.user` raises ValueError."""
    headers: dict[str, str] = field(default_factory=dict)
    """Headers (any name form) whose first value must equal this."""


@dataclass(frozen=True)
class Refused:
    error: str


@dataclass(frozen=True)
class Torture:
    name: str
    section: str
    text: str
    parse: Parsed | Refused
    live: frozenset[int]
    body: bytes = b""

    def render(self, via: str, node: str, tag: str) -> bytes:
        head = self.text.format(via=via, node=node, tag=tag, len=len(self.body))
        return head.replace("\n", "\r\n").encode("utf-8") + self.body

    def invite(self) -> bool:
        return self.text.startswith("INVITE ")


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


SDP = _crlf(
    "v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"
    "m=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n"
)
PCMU_SDP = _crlf(
    "v=0\no=t 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n"
    "m=audio 9 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n"
)
LONG = "very" * 60  # 240 characters: the message stays under pjsip's 4000-byte packet limit

OK = frozenset({200})
BAD_REQUEST = frozenset({400})
NOT_FOUND = frozenset({404})
SILENT = frozenset({0})
"""In `live`: no response at all is acceptable (alone: required)."""

CORPUS: list[Torture] = [
    # -- 3.1.1 valid messages -----------------------------------------------------------
    Torture(
        "wsinv",
        "3.1.1.1 A Short Tortuous INVITE",
        "INVITE sip:vivekg@{node};unknownparam SIP/2.0\n"
        "TO :\n sip:vivekg@{node} ;   tag    = 1918181833n\n"
        'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\n  ;\n  tag = 98asjd8\n'
        "MaX-fOrWaRdS: 0068\n"
        "Call-ID: wsinv.{tag}\n"
        "Content-Length   : {len}\n"
        "cseq: 0009\n  INVITE\n"
        "Via  : SIP  /   2.0\n /UDP\n    {via};branch=z9hG4bK-wsinv-{tag}\n"
        "s :\n"
        "NewFangledHeader:   newfangled value\n continued newfangled value\n"
        "UnknownHeaderWithUnusualValue: ;;,,;;,;\n"
        "Content-Type: application/sdp\n"
        "Route:\n <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\n"
        "v:  SIP  / 2.0  / TCP     spindle.example.com   ;\n  branch  =   z9hG4bK9ikj8  ,\n"
        " SIP  /    2.0   / UDP  192.168.255.111   ; branch=\n z9hG4bK30239\n"
        'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\n'
        "      newvalue ;\n  secondparam ; q = 0.33\n\n",
        Parsed(
            "INVITE",
            "vivekg",
            {
                "to": "sip:vivekg@{node} ;   tag    = 1918181833n",
                "NewFangledHeader": "newfangled value continued newfangled value",
                "UnknownHeaderWithUnusualValue": ";;,,;;,;",
                "c": "application/sdp",
                "max-forwards": "0068",
            },
        ),
        frozenset({481}),
        SDP,
    ),
    Torture(
        "intmeth",
        "3.1.1.2 Wide Range of Valid Characters",
        "!interesting-Method0123456789_*+`.%indeed'~ "
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
        "(doesn't-it)@{node} SIP/2.0\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-.!%66*_+`'~-{tag}\n"
        'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/crazy?'
        ",/;;*@example.com>\n"
        "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;"
        "fromParam''~+*_!.-%=\"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439\""
        ";tag=_token~1'+`*%!-.\n"
        "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}}{{.{tag}\n"
        "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\n"
        "Max-Forwards: 255\n"
        "extensionHeader-!.%*+_`'~:\ufeff\u5927\u505c\u96fb\n"
        "Content-Length: 0\n\n",
        # The method is an extension token, kept as sent; the user part is not a number.
        Parsed(
            "!interesting-Method0123456789_*+`.%indeed'~",
            None,
            {
                "max-forwards": "255",
                "cseq": "139122385 !interesting-Method0123456789_*+`.%indeed'~",
            },
        ),
        SILENT,
    ),
    Torture(
        "esc01",
        "3.1.1.3 Valid Use of the % Escaping Mechanism",
        "INVITE sip:sips%3Auser%40example.com@{node} SIP/2.0\n"
        "To: sip:%75se%72@example.com\n"
        "From: <sip:I%20have%20spaces@example.net>;tag=938\n"
        "Max-Forwards: 87\n"
        "i: esc01.{tag}\n"
        "CSeq: 14398234 INVITE\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-esc01-{tag}\n"
        "C: application/sdp\n"
        "Contact:\n  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\n"
        "L: {len}\n\n",
        # Percent-escapes are not decoded: this user is no number the node has.
        Parsed("INVITE", "sips%3Auser%40example.com", {"call-id": "esc01.{tag}", "l": "{len}"}),
        NOT_FOUND,
        SDP,
    ),
    Torture(
        "escnull",
        "3.1.1.4 Escaped Nulls in URIs",
        "REGISTER sip:{node} SIP/2.0\n"
        "To: sip:null-%00-null@example.com\n"
        "From: sip:null-%00-null@example.com;tag=839923423\n"
        "Max-Forwards: 70\n"
        "Call-ID: escnull.{tag}\n"
        "CSeq: 39292 REGISTER\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-escnull-{tag}\n"
        "Contact: <sip:%00@host5.example.com>\n"
        "Contact: <sip:%00%00@host5.example.com>\n"
        "L:0\n\n",
        Parsed("REGISTER", None, {"contact": "<sip:%00@host5.example.com>"}),
        SILENT,
    ),
    Torture(
        "esc02",
        "3.1.1.5 Use of % When It Is Not an Escape",
        "RE%47IST%45R sip:{node} SIP/2.0\n"
        'To: "%Z%45" <sip:resource@example.com>\n'
        'From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23\n'
        "Call-ID: esc02.{tag}\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-esc02-{tag}\n"
        "CSeq: 29344 RE%47IST%45R\n"
        "Max-Forwards: 70\n"
        "Contact: <sip:alias1@host1.example.com>\n"
        "C%6Fntact: <sip:alias2@host2.example.com>\n"
        "Contact: <sip:alias3@host3.example.com>\n"
        "l: 0\n\n",
        Parsed("RE%47IST%45R", None, {"c%6fntact": "<sip:alias2@host2.example.com>"}),
        SILENT,
    ),
    Torture(
        "lwsdisp",
        "3.1.1.6 Message with No LWS between Display Name and <",
        "OPTIONS sip:user@{node} SIP/2.0\n"
        "To: sip:user@example.com\n"
        "From: caller<sip:caller@example.com>;tag=323\n"
        "Max-Forwards: 70\n"
        "Call-ID: lwsdisp.{tag}\n"
        "CSeq: 2384 OPTIONS\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-lwsdisp-{tag}\n"
        "l: 0\n\n",
        Parsed("OPTIONS", "user", {"from": "caller<sip:caller@example.com>;tag=323"}),
        OK,
    ),
    Torture(
        "longreq",
        "3.1.1.7 Long Values in Header Fields",
        "INVITE sip:user@{node} SIP/2.0\n"
        f'To: "I have a user name of {LONG} proportion"<sip:user@example.com:6000;'
        f"unknownparam1=very{LONG}longvalue;longparam{LONG}name=shortvalue>\n"
        f"From: sip:amazinglylongcallername{LONG}@example.net;tag=12982424;unknowheader={LONG}\n"
        "Call-ID: longreq.one{tag}\n"
        "CSeq: 3882340 INVITE\n"
        f"Unknown-{LONG}-Name: unknown-{LONG}-value; unknown-{LONG}-parameter-name = "
        "unknown-long-parameter-value\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-longreq-{tag}\n"
        "Via: SIP/2.0/TCP sip33.example.com\n"
        "v: SIP/2.0/TCP sip32.example.com\n"
        "V: SIP/2.0/TCP sip31.example.com\n"
        "Via: SIP/2.0/TCP sip30.example.com\n"
        "Max-Forwards: 70\n"
        "Contact: <sip:amazinglylongcallername@host5.example.net>\n"
        "Content-Type: application/sdp\n"
        "l: {len}\n\n",
        Parsed("INVITE", "user", {"call-id": "longreq.one{tag}", "max-forwards": "70"}),
        NOT_FOUND,
        SDP,
    ),
    Torture(
        "dblreq",
        "3.1.1.8 Extra Trailing Octets in a UDP Datagram",
        "OPTIONS sip:{node} SIP/2.0\n"
        "To: sip:j.user@example.com\n"
        "From: sip:j.user@example.com;tag=43251j3j324\n"
        "Max-Forwards: 8\n"
        "I: dblreq.{tag}\n"
        "Contact: sip:j.user@host.example.com\n"
        "CSeq: 8 OPTIONS\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-dblreq-{tag}\n"
        "Content-Length: 0\n\n"
        "INVITE sip:1000@{node} SIP/2.0\n"
        "To: sip:1000@{node}\n"
        "From: sip:caller@example.net;tag=141334\n"
        "Max-Forwards: 8\n"
        "Call-ID: dblreq.second.{tag}\n"
        "CSeq: 1 INVITE\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-dblreq-second-{tag}\n"
        "Content-Length: 0\n\n",
        Parsed("OPTIONS", None, {"call-id": "dblreq.{tag}", "content-length": "0"}),
        OK,
    ),
    Torture(
        "semiuri",
        "3.1.1.9 Semicolon-Separated Parameters in URI User Part",
        "OPTIONS sip:user;par=u%40example.net@{node} SIP/2.0\n"
        "To: sip:j_user@example.com\n"
        "From: sip:caller@example.org;tag=33242\n"
        "Max-Forwards: 3\n"
        "Call-ID: semiuri.{tag}\n"
        "CSeq: 8 OPTIONS\n"
        "Accept: application/sdp, application/pkcs7-mime,\n multipart/mixed, multipart/signed,\n"
        "      message/sip, message/sipfrag\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-semiuri-{tag}\n"
        "l: 0\n\n",
        Parsed(
            "OPTIONS",
            "user",
            {
                "accept": "application/sdp, application/pkcs7-mime, "
                "multipart/mixed, multipart/signed, message/sip, message/sipfrag"
            },
        ),
        OK,
    ),
    Torture(
        "transports",
        "3.1.1.10 Varied and Unknown Transport Types",
        "OPTIONS sip:user@{node} SIP/2.0\n"
        "To: sip:user@example.com\n"
        "From: <sip:caller@example.com>;tag=323\n"
        "Max-Forwards: 70\n"
        "Call-ID: transports.{tag}\n"
        "CSeq: 60 OPTIONS\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-transports-{tag}\n"
        "Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf\n"
        "Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj\n"
        "Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en\n"
        "Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee\n"
        "l: 0\n\n",
        Parsed("OPTIONS", "user", {"via": "SIP/2.0/UDP {via};branch=z9hG4bK-transports-{tag}"}),
        OK,
    ),
    Torture(
        "mpart01",
        "3.1.1.11 Multipart MIME Message (binary part)",
        "MESSAGE sip:kumiko@{node} SIP/2.0\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-mpart01-{tag}\n"
        "Max-Forwards: 70\n"
        'From: "Chris Boulton" <sip:chris@example.com>;tag=ab8asdasd9\n'
        'To: "Kumiko" <sip:kumiko@example.org>\n'
        "Call-ID: mpart01.{tag}\n"
        "CSeq: 1 MESSAGE\n"
        'Content-Type: multipart/mixed;boundary="----=_Part_0"\n'
        "Content-Length: {len}\n\n",
        Parsed("MESSAGE", "kumiko", {"cseq": "1 MESSAGE"}),
        OK,
        body=b"------=_Part_0\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"------=_Part_0\r\nContent-Type: application/pkcs7-signature\r\n"
        b"Content-Transfer-Encoding: binary\r\n\r\n0\x82\x01\x00\r\x00\x0d\r\n\r\n\xff\xfe\x00"
        b"\r\n------=_Part_0--\r\n",
    ),
    Torture(
        "unreason",
        "3.1.1.12 Unusual Reason Phrase",
        "SIP/2.0 200 = 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f"
        "\u043d\u043e\u0441\u0442\u043e \u0434\u0435\u0432\u044f\u0442\u044c - "
        "\u043f\u0440\u043e\u0441\u0442\u043e\u0435\n"
        "Via: SIP/2.0/UDP {node};branch=z9hG4bK-unreason-{tag}\n"
        "Call-ID: unreason.{tag}\n"
        "CSeq: 353494 INVITE\n"
        "From: <sip:user@example.com>;tag=39ansfi3\n"
        "To: <sip:user@example.edu>;tag=902jndnke3\n"
        "Content-Length: 0\n\n",
        Refused("not a SIP request line"),
        SILENT,
    ),
    Torture(
        "noreason",
        "3.1.1.13 Empty Reason Phrase",
        "SIP/2.0 100 \n"
        "Via: SIP/2.0/UDP {node};branch=z9hG4bK-noreason-{tag}\n"
        "Call-ID: noreason.{tag}\n"
        "From: <sip:user@example.com>;tag=39ansfi3\n"
        "To: <sip:user@example.edu>;tag=902jndnke3\n"
        "CSeq: 1 INVITE\n"
        "Content-Length: 0\n\n",
        Refused("not a SIP request line"),
        SILENT,
    ),
    # -- 3.1.2 invalid messages ---------------------------------------------------------
    Torture(
        "badinv01",
        "3.1.2.1 Extraneous Header Field Separators",
        "INVITE sip:user@{node} SIP/2.0\n"
        "To: sip:j.user@example.com\n"
        "From: sip:caller@example.net;tag=134161461246\n"
        "Max-Forwards: 7\n"
        "Call-ID: badinv01.{tag}\n"
        "CSeq: 8 INVITE\n"
        "Via: SIP/2.0/UDP {via};;,;,,\n"
        'Contact: "Joe" <sip:joe@example.org>;;;;\n'
        "Content-Length: {len}\n"
        "Content-Type: application/sdp\n\n",
        Parsed("INVITE", "user", {"contact": '"Joe" <sip:joe@example.org>;;;;'}),
        BAD_REQUEST | SILENT,
        SDP,
    ),
    Torture(
        "clerr",
        "3.1.2.2 Content Length Larger Than Message",
        "INVITE sip:user@{node} SIP/2.0\n"
        "Max-Forwards: 80\n"
        "To: sip:j.user@example.com\n"
        "From: sip:caller@example.net;tag=93942939o2\n"
        "Contact: <sip:caller@hungry.example.net>\n"
        "Call-ID: clerr.{tag}\n"
        "CSeq: 8 INVITE\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-clerr-{tag}\n"
        "Content-Type: application/sdp\n"
        "Content-Length: 9999\n\n",
        Parsed("INVITE", "user", {"content-length": "9999"}),
        BAD_REQUEST | NOT_FOUND,
        SDP,
    ),
    Torture(
        "scalar02",
        "3.1.2.3 Negative Content-Length / out-of-range scalars",
        "REGISTER sip:{node} SIP/2.0\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-scalar02-{tag}\n"
        "Max-Forwards: 300\n"
        "From: sip:user@example.com;tag=932comp\n"
        "To: sip:user@example.com\n"
        "Call-ID: scalar02.{tag}\n"
        "CSeq: -999999999999999999999999 REGISTER\n"
        "Contact: <sip:user@host129.example.com>\n  ;expires=280297596632815\n"
        "Content-Length: -999\n\n",
        Parsed("REGISTER", None, {"cseq": "-999999999999999999999999 REGISTER"}),
        BAD_REQUEST | SILENT,
    ),
    Torture(
        "scalarlg",
        "3.1.2.4 Request Scalar Fields with Overlarge Values (response)",
        "SIP/2.0 503 Service Unavailable\n"
        "Via: SIP/2.0/TCP {node};branch=z9hG4bK-scalarlg-{tag}\n"
        "To: <sip:user@example.com>;tag=2992jd\n"
        "From: <sip:other@example.net>;tag=8493847\n"
        "Call-ID: scalarlg.{tag}\n"
        "CSeq: 53 INVITE\n"
        "Retry-After: 18446744073709551616\n"
        'Warning: 1812 overture "In Progress"\n'
        "Content-Length: 0\n\n",
        Refused("not a SIP request line"),
        SILENT,
    ),
    Torture(
        "quotbal",
        "3.1.2.5 Unterminated Quoted String in Display Name",
        "INVITE sip:user@{node} SIP/2.0\n"
        'To: "Mr. J. User <sip:j.user@example.com>\n'
        "From: sip:caller@example.net;tag=93334\n"
        "Max-Forwards: 10\n"
        "Call-ID: quotbal.{tag}\n"
        "CSeq: 8 INVITE\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-quotbal-{tag}\n"
        "Content-Type: application/sdp\n"
        "Content-Length: {len}\n\n",
        Parsed("INVITE", "user", {"to": '"Mr. J. User <sip:j.user@example.com>'}),
        BAD_REQUEST | SILENT,
        SDP,
    ),
    Torture(
        "ltgtruri",
        "3.1.2.6 <> Enclosing Request-URI",
        "INVITE <sip:1000@{node}> SIP/2.0\n"
        "To: sip:1000@{node}\n"
        "From: sip:caller@example.net;tag=39291\n"
        "Max-Forwards: 23\n"
        "Call-ID: ltgtruri.{tag}\n"
        "CSeq: 1 INVITE\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-ltgtruri-{tag}\n"
        "Content-Type: application/sdp\n"
        "Content-Length: {len}\n\n",
        Refused("enclosed in <>"),
        BAD_REQUEST | SILENT,
        PCMU_SDP,
    ),
    Torture(
        "lwsruri",
        "3.1.2.7 Malformed SIP Request-URI (embedded LWS)",
        "INVITE sip:1000@{node}; lr SIP/2.0\n"
        "To: sip:1000@{node};tag=3xfe-9921883-z9f\n"
        "From: sip:caller@example.net;tag=231413434\n"
        "Max-Forwards: 5\n"
        "Call-ID: lwsruri.{tag}\n"
        "CSeq: 2130706432 INVITE\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-lwsruri-{tag}\n"
        "Content-Type: application/sdp\n"
        "Content-Length: {len}\n\n",
        Refused("not a SIP request line"),
        BAD_REQUEST | SILENT,
        PCMU_SDP,
    ),
    Torture(
        "lwsstart",
        "3.1.2.8 Multiple SP Separating Request-Line Elements",
        "INVITE  sip:1000@{node}  SIP/2.0\n"
        "Max-Forwards: 8\n"
        "To: sip:1000@{node}\n"
        "From: sip:caller@example.net;tag=8814\n"
        "Call-ID: lwsstart.{tag}\n"
        "CSeq: 1893884 INVITE\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-lwsstart-{tag}\n"
        "Content-Type: application/sdp\n"
        "Content-Length: {len}\n\n",
        Refused("not a SIP request line"),
        BAD_REQUEST,
        PCMU_SDP,
    ),
    Torture(
        "trws",
        "3.1.2.9 SP Characters at End of Request-Line",
        "OPTIONS sip:remote-target@{node} SIP/2.0  \n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-trws-{tag}\n"
        "Max-Forwards: 70\n"
        "To: <sip:remote-target@example.com>\n"
        "From: <sip:local-resource@example.com>;tag=329429089\n"
        "Call-ID: trws.{tag}\n"
        "CSeq: 3923239 OPTIONS\n"
        "l: 0\n\n",
        Parsed("OPTIONS", "remote-target"),  # the reader is lenient here
        OK | BAD_REQUEST,
    ),
    Torture(
        "escruri",
        "3.1.2.10 Escaped Headers in SIP Request-URI",
        "INVITE sip:user@{node}?Route=%3Csip:example.com%3E SIP/2.0\n"
        "To: sip:user@example.com\n"
        "From: sip:caller@example.net;tag=341518\n"
        "Max-Forwards: 7\n"
        "Contact: <sip:caller@host39923.example.net>\n"
        "Call-ID: escruri.{tag}\n"
        "CSeq: 149209342 INVITE\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-escruri-{tag}\n"
        "Content-Type: application/sdp\n"
        "Content-Length: {len}\n\n",
        Parsed("INVITE", "user"),
        NOT_FOUND | BAD_REQUEST,
        SDP,
    ),
    Torture(
        "baddate",
        "3.1.2.11 Invalid Time Zone in Date Header Field",
        "INVITE sip:user@{node} SIP/2.0\n"
        "To: sip:user@example.com\n"
        "From: sip:caller@example.net;tag=2234923\n"
        "Max-Forwards: 70\n"
        "Call-ID: baddate.{tag}\n"
        "CSeq: 1392934 INVITE\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-baddate-{tag}\n"
        "Date: Fri, 01 Jan 2010 16:00:00 EST\n"
        "Contact: <sip:caller@host5.example.net>\n"
        "Content-Type: application/sdp\n"
        "Content-Length: {len}\n\n",
        Parsed("INVITE", "user", {"date": "Fri, 01 Jan 2010 16:00:00 EST"}),
        NOT_FOUND,
        SDP,
    ),
    Torture(
        "regbadct",
        "3.1.2.12 Failure to Enclose name-addr URI in <>",
        "REGISTER sip:{node} SIP/2.0\n"
        "To: sip:user@example.com\n"
        "From: sip:user@example.com;tag=998332\n"
        "Max-Forwards: 70\n"
        "Call-ID: regbadct.{tag}\n"
        "CSeq: 1 REGISTER\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-regbadct-{tag}\n"
        "Contact: sip:user@host.example.com?Route=%3Csip:sip.example.com%3E\n"
        "l: 0\n\n",
        Parsed("REGISTER", None),
        BAD_REQUEST | SILENT,
    ),
    Torture(
        "badaspec",
        "3.1.2.13 Spaces within addr-spec",
        "OPTIONS sip:user@{node} SIP/2.0\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-badaspec-{tag}\n"
        "Max-Forwards: 70\n"
        'From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423\n'
        'To: "Watson, Thomas" < sip:t.watson@example.org >\n'
        "Call-ID: badaspec.{tag}\n"
        "CSeq: 3 OPTIONS\n"
        "l: 0\n\n",
        Parsed("OPTIONS", "user"),
        OK | BAD_REQUEST,
    ),
    Torture(
        "baddn",
        "3.1.2.14 Non-token Characters in Display Name",
        "OPTIONS sip:t.watson@{node} SIP/2.0\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-baddn-{tag}\n"
        "Max-Forwards: 70\n"
        "From: Bell, Alexander <sip:a.g.bell@example.com>;tag=43\n"
        "To: Watson, Thomas <sip:t.watson@example.org>\n"
        "Call-ID: baddn.{tag}\n"
        "CSeq: 3 OPTIONS\n"
        "l: 0\n\n",
        Parsed("OPTIONS", "t.watson"),
        OK | BAD_REQUEST,
    ),
    Torture(
        "badvers",
        "3.1.2.15 Unknown Protocol Version",
        "OPTIONS sip:t.watson@{node} SIP/7.0\n"
        "Via: SIP/7.0/UDP {via};branch=z9hG4bK-badvers-{tag}\n"
        "Max-Forwards: 70\n"
        "From: A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\n"
        "To: T. Watson <sip:t.watson@example.org>\n"
        "Call-ID: badvers.{tag}\n"
        "CSeq: 1 OPTIONS\n"
        "l: 0\n\n",
        Refused("not a SIP request line"),
        frozenset({505}) | SILENT,
    ),
    Torture(
        "mismatch01",
        "3.1.2.16 Start Line and CSeq Method Mismatch",
        "OPTIONS sip:user@{node} SIP/2.0\n"
        "To: sip:j.user@example.com\n"
        "From: sip:caller@example.net;tag=34525\n"
        "Max-Forwards: 6\n"
        "Call-ID: mismatch01.{tag}\n"
        "CSeq: 8 INVITE\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-mismatch01-{tag}\n"
        "l: 0\n\n",
        Parsed("OPTIONS", "user", {"cseq": "8 INVITE"}),
        OK | BAD_REQUEST,
    ),
    Torture(
        "mismatch02",
        "3.1.2.17 Unknown Method with CSeq Method Mismatch",
        "NEWMETHOD sip:user@{node} SIP/2.0\n"
        "To: sip:j.user@example.com\n"
        "From: sip:caller@example.net;tag=34525\n"
        "Max-Forwards: 6\n"
        "Call-ID: mismatch02.{tag}\n"
        "CSeq: 8 INVITE\n"
        "Contact: <sip:caller@host.example.net>\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-mismatch02-{tag}\n"
        "Content-Type: application/sdp\n"
        "l: {len}\n\n",
        Parsed("NEWMETHOD", "user"),
        BAD_REQUEST | SILENT,
        SDP,
    ),
    Torture(
        "bigcode",
        "3.1.2.18 Overlarge Response Code",
        "SIP/2.0 4294967301 better not break the receiver\n"
        "Via: SIP/2.0/UDP {node};branch=z9hG4bK-bigcode-{tag}\n"
        "Call-ID: bigcode.{tag}\n"
        "CSeq: 353494 INVITE\n"
        "From: <sip:user@example.com>;tag=39ansfi3\n"
        "To: <sip:user@example.edu>;tag=902jndnke3\n"
        "Content-Length: 0\n\n",
        Refused("not a SIP request line"),
        SILENT,
    ),
    Torture(
        "oversize",
        "(not in RFC 4475) a 12 kB datagram, over pjsip's packet limit",
        "OPTIONS sip:user@{node} SIP/2.0\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-oversize-{tag}\n"
        "Max-Forwards: 70\n"
        "To: sip:user@example.com\n"
        "From: sip:caller@example.net;tag=9911\n"
        "Call-ID: oversize.{tag}\n"
        "CSeq: 1 OPTIONS\n"
        f"X-Padding: {'x' * 12_000}\n"
        "l: 0\n\n",
        Parsed("OPTIONS", "user", {"x-padding": "x" * 12_000}),
        OK | SILENT,
    ),
    # -- 3.2 / 3.3 transaction and application layer --------------------------------------
    Torture(
        "badbranch",
        "3.2.1 Missing Transaction Identifier (RFC 2543 branch)",
        "OPTIONS sip:user@{node} SIP/2.0\n"
        "To: sip:user@example.com\n"
        "From: sip:caller@example.org;tag=33242\n"
        "Max-Forwards: 3\n"
        "Via: SIP/2.0/UDP {via};branch=badbranch{tag}\n"
        "Call-ID: badbranch.{tag}\n"
        "CSeq: 3 OPTIONS\n"
        "l: 0\n\n",
        Parsed("OPTIONS", "user"),
        OK,
    ),
    Torture(
        "insuf",
        "3.3.1 Missing Required Header Fields",
        "INVITE sip:user@{node} SIP/2.0\n"
        "CSeq: 193942 INVITE\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-insuf-{tag}\n"
        "Content-Type: application/sdp\n"
        "l: {len}\n\n",
        Parsed("INVITE", "user", {"cseq": "193942 INVITE"}),
        BAD_REQUEST | SILENT,
        SDP,
    ),
    Torture(
        "unkscm",
        "3.3.2 Request-URI with Unknown Scheme",
        "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0\n"
        "To: sip:user@example.com\n"
        "From: sip:caller@example.net;tag=384\n"
        "Max-Forwards: 3\n"
        "Call-ID: unkscm.{tag}\n"
        "CSeq: 3923423 OPTIONS\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-unkscm-{tag}\n"
        "l: 0\n\n",
        Parsed("OPTIONS", None),
        frozenset({416}) | SILENT,
    ),
    Torture(
        "novelsc",
        "3.3.3 Request-URI with Known but Atypical Scheme",
        "OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0\n"
        "To: sip:user@example.com\n"
        "From: sip:caller@example.net;tag=384\n"
        "Max-Forwards: 3\n"
        "Call-ID: novelsc.{tag}\n"
        "CSeq: 3923423 OPTIONS\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-novelsc-{tag}\n"
        "l: 0\n\n",
        Parsed("OPTIONS", None),
        frozenset({416}) | SILENT,
    ),
    Torture(
        "bext01",
        "3.3.5 Unknown/Unsupported Require option",
        "OPTIONS sip:user@{node} SIP/2.0\n"
        "To: sip:j_user@example.com\n"
        "From: sip:caller@example.net;tag=242etr\n"
        "Max-Forwards: 6\n"
        "Call-ID: bext01.{tag}\n"
        "Require: nothingSupportedHere\n"
        "CSeq: 8 OPTIONS\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-bext01-{tag}\n"
        "l: 0\n\n",
        Parsed("OPTIONS", "user", {"require": "nothingSupportedHere"}),
        OK | frozenset({420}),
    ),
    Torture(
        "bext02",
        "3.3.5 (as an INVITE, to the number the node answers) Unsupported Require",
        "INVITE sip:1000@{node} SIP/2.0\n"
        "To: sip:1000@{node}\n"
        "From: sip:caller@example.net;tag=242etr\n"
        "Max-Forwards: 6\n"
        "Call-ID: bext02.{tag}\n"
        "Contact: <sip:caller@127.0.0.1:9>\n"
        "Require: nothingSupportedHere\n"
        "CSeq: 8 INVITE\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-bext02-{tag}\n"
        "Content-Type: application/sdp\n"
        "Content-Length: {len}\n\n",
        Parsed("INVITE", "1000", {"require": "nothingSupportedHere"}),
        frozenset({420}),
        PCMU_SDP,
    ),
    Torture(
        "invut",
        "3.3.6 Unknown Content-Type (for the number the node answers)",
        "INVITE sip:1000@{node} SIP/2.0\n"
        "Contact: <sip:caller@host5.example.net>\n"
        "To: sip:1000@{node}\n"
        "From: sip:caller@example.net;tag=8392034\n"
        "Max-Forwards: 70\n"
        "Call-ID: invut.{tag}\n"
        "CSeq: 193942 INVITE\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-invut-{tag}\n"
        "Content-Type: application/unknownformat\n"
        "Content-Length: {len}\n\n",
        Parsed("INVITE", "1000", {"content-type": "application/unknownformat"}),
        frozenset({415}),
        body=b'<audio> <pcmu port="443"/> </audio>\r\n',
    ),
    Torture(
        "multi01",
        "3.3.8 Multiple Values in Single Value Required Fields",
        "INVITE sip:user@{node} SIP/2.0\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-multi01-{tag}\n"
        "Max-Forwards: 70\n"
        "Route: <sip:127.0.0.1;lr>\n"
        "Max-Forwards: 40\n"
        "To: sip:user@example.com\n"
        "Call-ID: multi01.{tag}\n"
        "Contact: sip:caller@host5.example.net\n"
        "Contact: sip:caller@host6.example.net\n"
        "From: sip:caller@example.net;tag=3413415\n"
        "To: sip:user@example.net\n"
        "From: sip:caller@example.com;tag=2342342\n"
        "CSeq: 2 INVITE\n"
        "Call-ID: multi01.second.{tag}\n"
        "CSeq: 3 INVITE\n"
        "Content-Type: application/sdp\n"
        "Content-Length: {len}\n\n",
        Parsed("INVITE", "user", {"max-forwards": "70", "cseq": "2 INVITE"}),
        NOT_FOUND | BAD_REQUEST,
        SDP,
    ),
    Torture(
        "mcl01",
        "3.3.9 Multiple Content-Length Values",
        "OPTIONS sip:user@{node} SIP/2.0\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-mcl01-{tag}\n"
        "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKi3p4kjdf\n"
        "Max-Forwards: 70\n"
        "To: sip:user@example.com\n"
        "From: sip:caller@example.net;tag=3413415\n"
        "Call-ID: mcl01.{tag}\n"
        "CSeq: 15932 OPTIONS\n"
        "Content-Length: 13\n"
        "Content-Length: 5\n"
        "Content-Type: text/plain\n\n"
        "There's no way to know how many octets are supposed to be here.\n",
        Parsed("OPTIONS", "user", {"content-length": "13"}),
        OK | BAD_REQUEST,
    ),
    Torture(
        "zeromf",
        "3.3.11 Max-Forwards of Zero",
        "OPTIONS sip:user@{node} SIP/2.0\n"
        "To: sip:user@example.com\n"
        "From: sip:caller@example.net;tag=3ghsd41\n"
        "Call-ID: zeromf.{tag}\n"
        "CSeq: 39234321 OPTIONS\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-zeromf-{tag}\n"
        "Max-Forwards: 0\n"
        "l: 0\n\n",
        Parsed("OPTIONS", "user", {"max-forwards": "0"}),
        OK | frozenset({483}),
    ),
    Torture(
        "sdp01",
        "3.3.15 Unacceptable Accept Offering",
        "INVITE sip:user@{node} SIP/2.0\n"
        "To: sip:j_user@example.com\n"
        "Contact: <sip:caller@host15.example.net>\n"
        "From: sip:caller@example.net;tag=234\n"
        "Max-Forwards: 5\n"
        "Call-ID: sdp01.{tag}\n"
        "Via: SIP/2.0/UDP {via};branch=z9hG4bK-sdp01-{tag}\n"
        "CSeq: 1 INVITE\n"
        "Accept: text/nobodyKnowsThis\n"
        "Content-Type: application/sdp\n"
        "Content-Length: {len}\n\n",
        Parsed("INVITE", "user", {"accept": "text/nobodyKnowsThis"}),
        NOT_FOUND | frozenset({406}),
        SDP,
    ),
    Torture(
        "inv2543",
        "3.4.1 INVITE with RFC 2543 Syntax",
        "INVITE sip:UserB@{node} SIP/2.0\n"
        "Via: SIP/2.0/UDP {via}\n"
        "From: <sip:UserA@example.com>\n"
        "To: <sip:UserB@example.com>\n"
        "Call-ID: inv2543.{tag}\n"
        "CSeq: 1 INVITE\n"
        "Max-Forwards: 70\n"
        "Contact: <sip:UserA@192.0.2.1>\n"
        "Content-Type: application/sdp\n"
        "Content-Length: {len}\n\n",
        Parsed("INVITE", "UserB"),
        NOT_FOUND,
        SDP,
    ),
]


def write_corpus(directory: Path) -> int:
    """Write every message, rendered for a node on loopback, as a seed file for the fuzz bench
    (`python -m bench.sip_fuzz_run --seeds-dir DIR`); how many were written."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, torture in enumerate(CORPUS):
        seed = torture.render("127.0.0.1:9", "127.0.0.1", f"t{i}")
        (directory / f"{i:02d}-{torture.name}.sip").write_bytes(seed)
    return len(CORPUS)


if __name__ == "__main__":  # python -m tests.sip.torture DIR
    print(write_corpus(Path(sys.argv[1])))
