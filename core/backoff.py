"""The delay before the next try of something that keeps failing: exponential backoff.

One rule for every retry loop (the AMI reconnect, the analytics relay's sinks, the analytics
writer): after the first failure wait `base_s`, then twice as long after each further failure
in a row, never longer than `max_s`. No jitter: each loop has one peer.
"""

from __future__ import annotations

_MAX_DOUBLINGS = 1000
"""2.0 ** 1000 is still a float (about 1e301): more failures than this keep the cap."""


def backoff(failures: int, base_s: float, max_s: float) -> float:
    """Seconds to wait after `failures` failed tries in a row: 0 after none, then `base_s`,
    2·`base_s`, 4·`base_s`, ... capped at `max_s`. Any count is fine (no overflow after
    a day of failures)."""
    if failures <= 0:
        return 0.0
    return float(min(max_s, base_s * 2.0 ** min(failures - 1, _MAX_DOUBLINGS)))
