"""`FailedAuth` (sans-IO): a sliding window per source, a bounded number of sources."""

from __future__ import annotations

import pytest

from control_api.auth_limits import FailedAuth


def test_a_source_is_locked_out_until_its_oldest_failure_leaves_the_window() -> None:
    limits = FailedAuth(max_failures=2, window_s=10.0)
    assert limits.retry_after("a", 0.0) is None
    limits.failed("a", 1.0)
    assert limits.retry_after("a", 1.0) is None
    limits.failed("a", 4.5)
    assert limits.retry_after("a", 4.5) == 7  # ceil(1 + 10 - 4.5)
    assert limits.retry_after("b", 4.5) is None
    assert limits.retry_after("a", 10.9) == 1
    assert limits.retry_after("a", 11.0) is None  # the failure at 1 is out
    assert limits.retry_after("a", 14.5) is None and len(limits) == 0  # forgotten


def test_tracked_sources_are_bounded() -> None:
    limits = FailedAuth(max_failures=1, window_s=60.0, max_sources=3)
    for i, source in enumerate(["a", "b", "c", "d"]):
        limits.failed(source, float(i))
    assert len(limits) == 3
    assert limits.retry_after("a", 4.0) is None  # the least recently failing went first
    assert all(limits.retry_after(s, 4.0) is not None for s in ("b", "c", "d"))
    with pytest.raises(ValueError):
        FailedAuth(max_failures=0, window_s=1.0)
