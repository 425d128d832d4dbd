"""Fails the test in which a pjsua2 object broke its lifetime rule (see `sip.lifetime`).

Imported as an autouse fixture by the conftest of every test folder that runs the SIP user
agent. A pjsua2 object freed on the wrong thread, freed while still on the conference bridge, or
alive after its endpoint stopped fails the test, naming the object's type."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sip.lifetime import LIFETIMES


@pytest.fixture(autouse=True)
def pjsua_lifetimes() -> Iterator[None]:
    before = len(LIFETIMES.violations)
    yield
    if LIFETIMES.tracked():
        gc.collect()  # an object only a reference cycle kept is freed now, in this test
    broken = LIFETIMES.violations[before:]
    assert not broken, f"pjsua2 lifetime rule broken: {broken}"
