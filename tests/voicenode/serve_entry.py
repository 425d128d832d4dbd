"""`python -m tests.voicenode.serve_entry [CONFIG]`: `voicenode serve` with the fake host (for
tests). Settings come from CONFIG and VOICENODE_* variables as in the real node, WebRTC
options from their `[webrtc]` section."""

from __future__ import annotations

import logging
import sys

from config.loader import load_settings
from tests.support.host import fake_host_factory
from voicenode.serve import main_serve


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    settings = load_settings(sys.argv[1] if len(sys.argv) > 1 else None)
    return main_serve(settings, fake_host_factory)


if __name__ == "__main__":
    sys.exit(main())
