"""Prometheus metrics owned by the control API (in the default registry, which /metrics serves;
the pipeline and the transports register theirs there too)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ACTIVE_CALLS = Gauge("voicenode_active_calls", "Calls admitted and not yet ended")
CALLS_ENDED = Counter(
    "voicenode_calls_total", "Calls that ended, by outcome and transport", ["outcome", "transport"]
)
CALLS_REFUSED = Counter(
    "voicenode_calls_refused_total", "New calls refused by admission control", ["reason"]
)
