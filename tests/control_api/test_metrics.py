"""/metrics carries every family the node exports, and the engine queue depth is read live."""

from __future__ import annotations

import gc
import re

from prometheus_client import REGISTRY

from pipeline.engines import export_queue_depth
from tests.support.harness import Node

FAMILIES = {
    "voicenode_active_calls": "gauge",
    "voicenode_calls_total": "counter",
    "voicenode_calls_refused_total": "counter",
    "voicenode_analytics_backlog": "gauge",
    "voicenode_analytics_lag_seconds": "gauge",
    "voicenode_turn_stage_seconds": "histogram",
    "voicenode_engine_queue_depth": "gauge",
    "voicenode_stt_partials_skipped_total": "counter",
    "voicenode_playout_frames_late_total": "counter",
    "voicenode_webrtc_frames_late_total": "counter",
    "voicenode_webrtc_frames_dropped_total": "counter",
}


async def test_every_metric_family_is_exposed(node: Node) -> None:
    text = (await node.http.get("/metrics")).text
    for name, kind in FAMILIES.items():
        assert f"# TYPE {name} {kind}" in text, name
    # counters that should stay at zero are exported from the start (before any call)
    for sample in (
        'voicenode_webrtc_frames_late_total{direction="out"}',
        'voicenode_webrtc_frames_dropped_total{direction="in"}',
        "voicenode_playout_frames_late_total",
        "voicenode_stt_partials_skipped_total",
    ):
        assert re.search(rf"^{re.escape(sample)} \d", text, re.M), sample


class _Engine:
    def __init__(self) -> None:
        self.depth = 0


def test_engine_queue_depth_is_read_at_each_scrape() -> None:
    engine = _Engine()
    export_queue_depth("tts", engine)  # type: ignore[arg-type]
    engine.depth = 3
    assert REGISTRY.get_sample_value("voicenode_engine_queue_depth", {"engine": "tts"}) == 3
    engine.depth = 1
    assert REGISTRY.get_sample_value("voicenode_engine_queue_depth", {"engine": "tts"}) == 1
    del engine  # a closed, dropped engine is not kept alive by the gauge
    gc.collect()
    assert REGISTRY.get_sample_value("voicenode_engine_queue_depth", {"engine": "tts"}) == 0
