"""`python -m tests.voicenode.serve_entry`: `voicenode serve` with the fake host (for tests).

Settings come from VOICENODE_* variables as in the real node; WebRTC stays on loopback."""

from __future__ import annotations

import logging
import sys

from config.loader import load_settings
from media.webrtc import WebRtcOptions
from tests.control_api.fakes import fake_host_factory
from voicenode.serve import main_serve


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    settings = load_settings()
    return main_serve(
        settings, fake_host_factory, webrtc=WebRtcOptions(host_addresses=("127.0.0.1",))
    )


if __name__ == "__main__":
    sys.exit(main())
