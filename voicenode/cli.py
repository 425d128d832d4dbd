"""The `voicenode` command."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("voicenode: not yet", file=sys.stderr)
    return 2
