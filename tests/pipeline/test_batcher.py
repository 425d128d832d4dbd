"""The engines' micro-batcher on a virtual clock: no threads, no sleeps."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pipeline.batcher import Batcher, BatcherClosed, decode_each

WINDOW = 0.008


def batcher(max_batch: int = 8, capacity: int = 32) -> Batcher[str]:
    return Batcher(max_batch=max_batch, window_s=WINDOW, capacity=capacity)


def test_finals_go_before_partials_and_never_share_their_batch() -> None:
    b = batcher()
    b.put("p1", final=False, now=0.0, stream="a")
    b.put("f1", final=True, now=0.001, stream="b")
    b.put("p2", final=False, now=0.002, stream="c")
    b.put("f2", final=True, now=0.003, stream="d")
    first = b.take(WINDOW)
    assert first is not None
    assert (first.jobs, first.final) == (["f1", "f2"], True)
    second = b.take(WINDOW)
    assert second is not None
    assert (second.jobs, second.final) == (["p1", "p2"], False)
    assert b.take(1.0) is None
    assert b.depth == 0


def test_a_batch_holds_at_most_max_batch_jobs_oldest_first() -> None:
    b = batcher(max_batch=3)
    for i in range(5):
        b.put(f"f{i}", final=True, now=0.0)
    full = b.take(0.0)  # max_batch pending: no wait
    assert full is not None and full.jobs == ["f0", "f1", "f2"]
    assert b.take(0.0) is None  # two left, fewer than max_batch: the oldest's window runs
    rest = b.take(WINDOW)
    assert rest is not None and rest.jobs == ["f3", "f4"]


def test_a_newer_partial_replaces_the_queued_one_of_its_stream() -> None:
    b = batcher()
    assert b.put("a1", final=False, now=0.0, stream="a") == []
    assert b.put("b1", final=False, now=0.001, stream="b") == []
    assert b.put("a2", final=False, now=0.002, stream="a") == ["a1"]
    assert b.put("x", final=False, now=0.002) == []  # no stream: never replaced
    assert b.put("y", final=False, now=0.002) == []
    assert b.dropped_partials == 1
    batch = b.take(0.001 + WINDOW)  # a1 gone: b1 is the oldest
    assert batch is not None and batch.jobs == ["b1", "a2", "x", "y"]


def test_a_final_supersedes_its_streams_queued_partial() -> None:
    b = batcher()
    b.put("a-partial", final=False, now=0.0, stream="a")
    b.put("b-partial", final=False, now=0.0, stream="b")
    assert b.put("a-final", final=True, now=0.001, stream="a") == ["a-partial"]
    assert b.put("a-final-2", final=True, now=0.001, stream="a") == []  # finals are kept
    finals = b.take(WINDOW)
    assert finals is not None and finals.jobs == ["a-final", "a-final-2"]
    partials = b.take(WINDOW)
    assert partials is not None and partials.jobs == ["b-partial"]


def test_a_partial_finding_the_queue_full_is_dropped_a_final_is_not() -> None:
    b = batcher(capacity=2)
    b.put("p1", final=False, now=0.0, stream="a")
    b.put("p2", final=False, now=0.0, stream="b")
    assert b.put("p3", final=False, now=0.0, stream="c") == ["p3"]
    assert b.put("f", final=True, now=0.0, stream="c") == []
    assert b.depth == 3
    assert b.dropped_partials == 1


def test_a_batch_waits_the_window_after_the_oldest_job_at_most() -> None:
    b = batcher()
    assert b.wait_s(0.0) is None and b.take(0.0) is None  # nothing waits
    b.put("p", final=False, now=1.0)
    assert b.take(1.0) is None
    assert b.wait_s(1.0) == pytest.approx(WINDOW)
    b.put("f", final=True, now=1.005)  # a later job does not move the deadline
    assert b.wait_s(1.005) == pytest.approx(0.003)
    assert b.take(1.0079) is None
    batch = b.take(1.008)
    assert batch is not None and batch.jobs == ["f"]
    assert batch.waits == [pytest.approx(0.003)]
    # the partial's window passed long ago: it goes at the next look
    assert b.wait_s(1.008) == 0.0
    later = b.take(1.008)
    assert later is not None and later.jobs == ["p"] and later.waits == [pytest.approx(WINDOW)]


def test_a_full_batch_goes_without_waiting() -> None:
    b = batcher(max_batch=2)
    b.put("p1", final=False, now=0.0, stream="a")
    assert b.take(0.0) is None
    b.put("p2", final=False, now=0.001, stream="b")
    assert b.wait_s(0.001) == 0.0
    batch = b.take(0.001)
    assert batch is not None and batch.jobs == ["p1", "p2"]
    assert batch.waits == [pytest.approx(0.001), 0.0]


def test_a_zero_window_takes_what_is_queued_at_once() -> None:
    b = Batcher[str](max_batch=8, window_s=0.0, capacity=8)
    b.put("f", final=True, now=5.0)
    assert b.wait_s(5.0) == 0.0
    batch = b.take(5.0)
    assert batch is not None and batch.jobs == ["f"] and batch.waits == [0.0]


def test_shutdown_hands_back_every_pending_job_and_takes_no_more() -> None:
    b = batcher()
    b.put("p", final=False, now=0.0, stream="a")
    b.put("f", final=True, now=0.0, stream="b")
    assert b.close() == ["f", "p"]
    assert b.closed and b.depth == 0
    assert b.take(1.0) is None
    with pytest.raises(BatcherClosed):
        b.put("late", final=True, now=1.0)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Batcher[str](max_batch=0, window_s=0.0, capacity=1)
    with pytest.raises(ValueError):
        Batcher[str](max_batch=1, window_s=-1.0, capacity=1)


class Model:
    """A model call that fails on any batch holding a "bad" input."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, items: Sequence[str]) -> list[str]:
        self.calls.append(list(items))
        if "bad" in items:
            raise RuntimeError("cannot decode")
        return [item.upper() for item in items]


def test_a_failing_model_call_fails_only_its_own_job() -> None:
    model = Model()
    outcomes = decode_each(model, ["one", "bad", "three"])
    assert outcomes[0] == "ONE" and outcomes[2] == "THREE"
    assert isinstance(outcomes[1], RuntimeError)
    assert model.calls == [["one", "bad", "three"], ["one"], ["bad"], ["three"]]


def test_a_good_batch_is_one_model_call_and_a_lone_failure_is_not_retried() -> None:
    model = Model()
    assert decode_each(model, ["a", "b"]) == ["A", "B"]
    assert model.calls == [["a", "b"]]
    lone = decode_each(model, ["bad"])
    assert len(lone) == 1 and isinstance(lone[0], RuntimeError)
    assert model.calls[1:] == [["bad"]]


def test_a_model_call_answering_the_wrong_count_is_retried_per_job() -> None:
    calls: list[int] = []

    def short_by_one(items: Sequence[str]) -> list[str]:
        calls.append(len(items))
        return list(items)[: max(1, len(items) - 1)]

    assert decode_each(short_by_one, ["a", "b", "c"]) == ["a", "b", "c"]
    assert calls == [3, 1, 1, 1]
