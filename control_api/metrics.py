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
ANALYTICS_BACKLOG = Gauge(
    "voicenode_analytics_backlog",
    "This node's analytics outbox rows a batch sink has not taken yet",
    ["sink"],
)
ANALYTICS_LAG = Gauge(
    "voicenode_analytics_lag_seconds",
    "Age of the oldest analytics outbox row a batch sink has not taken yet (0: none)",
    ["sink"],
)
