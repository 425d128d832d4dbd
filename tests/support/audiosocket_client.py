"""The protocol-exact AudioSocket client the tests use: it lives in the bench package
(`bench.wire.audiosocket_client`), which drives calls with it too."""

from bench.wire.audiosocket_client import (
    DTMF,
    ERROR,
    HANGUP,
    RATE_OF_KIND,
    SLIN,
    UUID,
    AudioSocketClient,
    Received,
    message,
)

__all__ = [
    "DTMF",
    "ERROR",
    "HANGUP",
    "RATE_OF_KIND",
    "SLIN",
    "UUID",
    "AudioSocketClient",
    "Received",
    "message",
]
