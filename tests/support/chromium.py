"""Debian's headless Chromium for tests (driven by playwright, no download).

`_chromium_installed` is an autouse fixture: a test module that imports it fails its tests when
Chromium is missing (`make system-packages` installs it) instead of skipping them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(autouse=True)
def _chromium_installed() -> None:
    """Chromium is a test dependency (`make test` installs it): missing, the tests fail."""
    assert os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} is missing: `make system-packages` installs Debian's chromium"
    )


def chromium_args(fake_audio: Path) -> list[str]:
    """Headless Chromium with a fake microphone playing `fake_audio`, ICE on loopback only."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_audio}",
        # ICE on loopback only: gather 127.0.0.1 candidates, no mDNS names for host addresses
        "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--autoplay-policy=no-user-gesture-required",
    ]
