"""What the SIP side logs about a request it cannot use says what is wrong, never what the
request said: the parser's errors (logged as `error`, a field no redaction touches) quote no
URI and no header, so the dialled and calling numbers stay out of the logs."""

from __future__ import annotations

import pytest

from sip.message import parse_request, uri_user

NUMBER = "15551234567"

BAD_REQUESTS = [
    f"INVITE sip:+{NUMBER}@node SIP/2.0 trailing junk\r\nVia: x\r\n\r\n",
    f"INVITE sip:+{NUMBER}@node SIP/2.0\r\nFrom +{NUMBER} <sip:+{NUMBER}@caller>\r\n\r\n",
]


@pytest.mark.parametrize("text", BAD_REQUESTS)
def test_request_errors_do_not_quote_the_request(text: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_request(text)
    assert NUMBER not in str(refused.value)
    assert "characters" in str(refused.value)  # what is wrong is still said


@pytest.mark.parametrize("uri", [f"http://+{NUMBER}@node", f"mailto:+{NUMBER}@node"])
def test_uri_errors_do_not_quote_the_uri(uri: str) -> None:
    with pytest.raises(ValueError, match="not a sip:, sips: or tel: URI") as refused:
        uri_user(uri)
    assert NUMBER not in str(refused.value)
