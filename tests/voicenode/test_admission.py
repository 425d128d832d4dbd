from __future__ import annotations

import asyncio

import pytest

from control_api.host import OverCapacity
from control_api.refusals import Draining, EngineSaturated
from tests.support.host import FakeHost
from tests.support.load_fakes import LoadDriver
from voicenode.admission import Admission


def test_admits_up_to_max_calls_then_refuses_with_retry_after() -> None:
    adm = Admission(2, retry_after_full_s=4)
    adm.admit("a")
    adm.admit("b")
    with pytest.raises(OverCapacity) as exc:
        adm.admit("c")
    assert exc.value.reason == "max_calls" and exc.value.retry_after_s == 4
    assert adm.active == 2
    adm.release("a")
    adm.admit("c")
    assert adm.active == 2


def test_release_is_idempotent_and_ids_are_unique() -> None:
    adm = Admission(3)
    adm.admit("a")
    with pytest.raises(ValueError, match="already admitted"):
        adm.admit("a")
    adm.release("a")
    adm.release("a")
    adm.release("never-admitted")
    assert adm.active == 0


def test_draining_refuses_everything_but_keeps_live_calls() -> None:
    adm = Admission(5, retry_after_draining_s=20)
    adm.admit("live")
    adm.start_drain()
    adm.start_drain()
    assert adm.draining
    with pytest.raises(OverCapacity) as exc:
        adm.admit("new")
    assert exc.value.reason == "draining" and exc.value.retry_after_s == 20
    assert "retry after 20 s" in str(exc.value)
    assert adm.active == 1


async def test_wait_idle_returns_when_the_last_call_is_released() -> None:
    adm = Admission(2)
    await asyncio.wait_for(adm.wait_idle(), 1)  # idle from the start
    adm.admit("a")
    adm.admit("b")
    waiter = asyncio.create_task(adm.wait_idle())
    adm.release("a")
    await asyncio.sleep(0)
    assert not waiter.done()
    adm.release("b")
    await asyncio.wait_for(waiter, 1)


def test_max_calls_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_calls"):
        Admission(0)


def test_drain_hooks_run_once_when_the_drain_starts_or_at_once_after() -> None:
    admission = Admission(max_calls=1)
    seen: list[str] = []
    admission.on_drain(lambda: seen.append("early"))
    assert seen == []
    admission.start_drain()
    admission.start_drain()  # a second signal does not run them again
    assert seen == ["early"]
    admission.on_drain(lambda: seen.append("late"))  # a listener started while draining
    assert seen == ["early", "late"]


def test_saturated_engines_refuse_new_calls_and_keep_live_ones() -> None:
    load = LoadDriver()
    adm = Admission(5, retry_after_full_s=4)
    adm.admit("live", load.estimator)
    load.saturate()
    with pytest.raises(EngineSaturated) as exc:
        adm.admit("new", load.estimator)
    assert exc.value.reason == "engines_saturated" and exc.value.retry_after_s == 4
    assert isinstance(exc.value, OverCapacity)  # a full node, as far as any caller knows
    assert adm.active == 1
    adm.admit("unmeasured")  # no estimator: only max_calls counts
    load.relieve()
    adm.admit("new", load.estimator)
    assert adm.active == 3


def test_max_calls_and_draining_are_said_before_saturation() -> None:
    load = LoadDriver()
    load.saturate()
    adm = Admission(1, retry_after_full_s=4, retry_after_draining_s=9)
    with pytest.raises(EngineSaturated):
        adm.admit("a", load.estimator)
    adm.admit("a")
    with pytest.raises(OverCapacity) as full:
        adm.admit("b", load.estimator)
    assert full.value.reason == "max_calls"
    adm.start_drain()
    with pytest.raises(Draining):
        adm.admit("b", load.estimator)


async def test_a_host_is_saturated_while_its_engines_estimator_says_so() -> None:
    host = FakeHost(max_calls=4)
    assert host.load is None and not host.saturated  # no engines: nothing measured
    load = LoadDriver()
    host.engines = load.engines
    assert host.load is load.estimator and not host.saturated
    host.admit("live")
    load.saturate()
    assert host.saturated
    with pytest.raises(EngineSaturated):
        host.admit("new")
    assert host.active_calls() == 1
    load.relieve()
    host.admit("new")
    host.release("live")
    host.release("new")
