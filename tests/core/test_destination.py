"""Transfer and dial targets as typed destinations: what parses, what it prints as, and that
nothing that could inject an AMI header, a Dial() option or a URI parameter survives."""

from __future__ import annotations

import msgspec
import pytest

from core.destination import Destination, Extension, Number, SipUri, parse


@pytest.mark.parametrize(
    ("text", "expected", "canonical"),
    [
        ("+15551234567", Number("+15551234567"), "+15551234567"),
        ("+1 (555) 123-4567", Number("+15551234567"), "+15551234567"),
        ("tel:+442071234567", Number("+442071234567"), "+442071234567"),
        ("sip:desk@clinic.example", SipUri(host="clinic.example", user="desk"), None),
        ("SIP:Desk@Clinic.Example:5070", SipUri("clinic.example", "Desk", 5070),
         "sip:Desk@clinic.example:5070"),
        ("sips:+15551234@pbx.example.com", SipUri("pbx.example.com", "+15551234", None, True),
         None),
        ("sip:127.0.0.1:5062", SipUri(host="127.0.0.1", port=5062), None),
        ("sip:100@[::1]:5060", SipUri(host="::1", user="100", port=5060), "sip:100@[::1]:5060"),
        ("100", Extension("100"), "100"),
        ("front-desk", Extension("front-desk"), "front-desk"),
        ("sales.queue_2", Extension("sales.queue_2"), "sales.queue_2"),
    ],
)  # fmt: skip
def test_valid_destinations(text: str, expected: Destination, canonical: str | None) -> None:
    destination = parse(text)
    assert destination == expected
    assert str(destination) == (canonical or text)
    assert parse(str(destination)) == destination  # the canonical form parses to itself


INJECTIONS = [
    # AMI: a line break ends the field; an empty line ends the action and starts another.
    "100\r\nAction: Originate\r\nChannel: Local/s@x\r\nApplication: System\r\nData: id",
    "sip:desk@clinic.example\r\n\r\nAction: Originate",
    "100\nChannel: Local/1@default",
    "100\x00",
    # Redirect's old `context,exten,priority` form, and Dial() options after a comma.
    "default,100,1",
    "sip:desk@clinic.example,,G(evil^s^1)",
    # Dial() to several channels, dialplan functions, URI parameters and headers.
    "sip:desk@clinic.example&PJSIP/evil",
    "${SHELL(id)}",
    "sip:desk@clinic.example;transport=tcp",
    "sip:desk@clinic.example?Subject=x",
    "sip:a b@clinic.example",
    "sip:desk@evil.example@clinic.example",
    "<sip:desk@clinic.example>",
    "PJSIP/desk@trunk",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_attempts_are_refused_with_a_specific_message(text: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse(text)
    message = str(refused.value)
    assert message and "\r" not in message and "\n" not in message
    assert text not in message  # never echoed


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 300, "longer than 256"),
        ("+0123456789", "E.164"),
        ("+12345", "E.164"),
        ("+1234567890123456", "E.164"),
        ("+1555abc1234", "E.164"),
        ("+١٢٣٤٥٦٧٨", "E.164"),  # non-ASCII digits
        ("sip:", "not a SIP URI"),
        ("sip:desk@", "not a SIP URI"),
        ("sip:desk@-bad-.example", "host"),
        ("sip:desk@clinic.example:0", "port"),
        ("sip:desk@clinic.example:99999", "port"),
        ("sip:desk@[::1", "IPv6"),
        ("http://evil.example/", "not an E.164 number"),
        ("100 200", "not an E.164 number"),
        ("a" * 65, "not an E.164 number"),
    ],
)
def test_malformed_destinations(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse(text)


def test_destinations_are_frozen_tagged_structs() -> None:
    encoded = msgspec.json.encode(parse("sip:desk@clinic.example"))
    assert msgspec.json.decode(encoded, type=Destination) == SipUri("clinic.example", "desk")
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"type": "number", "e164": "+1", "extra": 1}', type=Destination)
