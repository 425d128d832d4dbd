"""deploy/grafana/voicenode.json: every query names a metric the node registers.

The node's metrics are read from prometheus_client's default registry after importing the
node (what `GET /metrics` serves), as the series names Prometheus scrapes: a counter `x` is
`x_total`, a histogram `x_bucket`/`x_sum`/`x_count`. The metric names in a PromQL expression
are the identifiers left once strings, label matchers, range durations, `by (...)`-style
label lists, function calls and keywords are taken out."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "voicenode.json"

NODE_MODULES = ("voicenode.cli", "voicenode.serve", "voicenode.node", "sip.media_port")
"""Importing these registers every metric the node serves (the SIP media port's is loaded
only when SIP is on)."""

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}

KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"and", "or", "unless", "inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:$.])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a `label_values(metric, label)`) selects."""
    expr = _STRING.sub('""', expr)
    label_values = re.fullmatch(r"\s*label_values\(\s*([A-Za-z_:][\w:]*)[^)]*\)\s*", expr)
    if label_values:
        return {label_values.group(1)}
    expr = _MATCHERS.sub("{}", expr)
    expr = _RANGE.sub("[]", expr)
    expr = _LABEL_LIST.sub("", expr)
    return {
        m.group(1)
        for m in _IDENT.finditer(expr)
        if m.group(2) is None and m.group(1).lower() not in KEYWORDS
    }


def node_series() -> set[str]:
    for module in NODE_MODULES:
        importlib.import_module(module)
    names: set[str] = set()
    for family in REGISTRY.collect():
        suffixes = SUFFIXES.get(family.type, ("",))
        names.update(family.name + s for s in suffixes)
    return names


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expression) for every panel target and templating query."""
    out: list[tuple[str, str]] = []
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop(0)
        panels.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]
            out.append((f"${var['name']}", query["query"] if isinstance(query, dict) else query))
    return out


def test_the_extractor_reads_names_not_functions_labels_or_durations() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, stage) (rate(voicenode_turn_stage_seconds_bucket{"
        'stage!="voice_to_voice", instance=~"$instance"}[$__rate_interval])))'
        " / on (stage) group_left sum(up offset 5m) and bool process_open_fds > 2"
    )
    assert metric_names(expr) == {"voicenode_turn_stage_seconds_bucket", "up", "process_open_fds"}
    assert metric_names("label_values(voicenode_active_calls, instance)") == {
        "voicenode_active_calls"
    }
    assert metric_names('sum(rate(x_total{a="by (b)"}[1m])) by (job)') == {"x_total"}


def test_the_registry_lists_the_series_prometheus_scrapes() -> None:
    series = node_series()
    assert {"voicenode_calls_total", "voicenode_turn_stage_seconds_bucket"} <= series
    assert "voicenode_sip_frames_dropped_total" in series
    assert "voicenode_calls" not in series and "voicenode_active_calls_total" not in series


def test_every_dashboard_query_names_a_metric_the_node_registers() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    series = node_series()
    found = queries(dashboard)
    assert len(found) >= 20
    unknown = [
        (where, name) for where, expr in found for name in metric_names(expr) if name not in series
    ]
    assert not unknown, f"queries name metrics the node does not register: {unknown}"
    assert all(metric_names(expr) for _, expr in found), "a query selects no metric"


@pytest.mark.parametrize(
    "expr", ["rate(voicenode_calls_totl[5m])", "voicenode_active_calls_bucket", "sum(nope)"]
)
def test_a_misspelled_metric_is_caught(expr: str) -> None:
    assert not metric_names(expr) <= node_series()
