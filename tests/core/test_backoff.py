"""`core.backoff.backoff`: the delay every retry loop waits."""

from __future__ import annotations

from core.backoff import backoff


def test_no_failure_no_wait() -> None:
    assert backoff(0, 0.5, 30.0) == 0.0
    assert backoff(-3, 0.5, 30.0) == 0.0


def test_doubles_from_the_base_up_to_the_cap() -> None:
    assert [backoff(n, 1.0, 4.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert [backoff(n, 0.01, 0.05) for n in range(5)] == [0, 0.01, 0.02, 0.04, 0.05]


def test_same_delays_as_doubling_in_a_loop() -> None:
    """The analytics writer doubled its delay in place (0.05 s up to 5 s): same numbers."""
    delay, delays = 0.05, []
    for _ in range(12):
        delays.append(delay)
        delay = min(delay * 2, 5.0)
    assert [backoff(n, 0.05, 5.0) for n in range(1, 13)] == delays


def test_any_number_of_failures_keeps_the_cap() -> None:
    # 0.5 * 2 ** 1024 would raise OverflowError: a day of failed reconnects must not
    assert backoff(1025, 0.5, 30.0) == 30.0
    assert backoff(10**9, 0.5, 30.0) == 30.0
    assert backoff(10**9, 1e300, 60.0) == 60.0
