"""The analytics benchmark's report (`bench.analytics`): report.md from report.json's fields.

report.json: `machine` (`bench.report.machine_info`, and the load after the run), `clickhouse`
(server version, which server), `params`, `ingest` and `summary_data` (one per database:
calls, turns, outbox events and batches sent through the sink, retries, refusals, rows sent
and rows in ClickHouse with `FINAL`, `rows_match`, `sink_s` and `rows_per_s` through the sink,
`insert_s` and `insert_rows_per_s` per table, active parts, wall time), `summary` (per tenant
and grouping: calls, groups, p50/p95/max ms over `runs` timed runs; the worst p50 and p95),
`goals` (the issue's goals with the value measured and whether it was met) and `rows_match`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from bench.report import machine_info

# Issue 23's goals on its 2-core machine (reported, not asserted): rows/s through the sink,
# and the summary query's p95 (the worst tenant and grouping).
GOAL_ROWS_PER_S: Final = 50_000
GOAL_SUMMARY_P95_MS: Final = 300.0


def percentile_ms(values: Sequence[float], q: float) -> float:
    """The sorted value at index ⌊q·n⌋ (ClickHouse's `quantileExact`), rounded to 0.01 ms."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def build_report(
    machine: dict[str, Any],
    clickhouse: dict[str, Any],
    params: dict[str, Any],
    ingested: dict[str, Any],
    loaded: dict[str, Any],
    summary: dict[str, Any],
) -> dict[str, Any]:
    """report.json; `machine` is `machine_info()` from before the run."""
    rate, p95 = ingested["rows_per_s"], summary["p95_ms_worst"]
    return {
        "bench": "analytics",
        "machine": machine | {"load_avg_1m_after": machine_info()["load_avg_1m"]},
        "clickhouse": clickhouse,
        "params": params,
        "ingest": ingested,
        "summary_data": loaded,
        "summary": summary,
        "goals": {
            "ingest_rows_per_s": {
                "goal": GOAL_ROWS_PER_S,
                "value": rate,
                "met": rate is not None and rate >= GOAL_ROWS_PER_S,
            },
            "summary_p95_ms": {
                "goal": GOAL_SUMMARY_P95_MS,
                "value": p95,
                "met": p95 <= GOAL_SUMMARY_P95_MS,
            },
        },
        "rows_match": ingested["rows_match"] and loaded["rows_match"],
    }


def _rate(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _phase_lines(title: str, phase: Mapping[str, Any]) -> list[str]:
    sent, landed = phase["rows_sent"], phase["rows_in_clickhouse"]
    per_table = phase["insert_rows_per_s"]
    return [
        f"## {title}",
        "",
        f"{phase['calls']:,} calls, {phase['turns']:,} turns: {phase['outbox_events']:,} outbox "
        f"events in {phase['batches']:,} batches of up to {phase['batch_size']:,} "
        f"(database `{phase['database']}`; {phase['retries']} retried, "
        f"{phase['refused']} refused).",
        "",
        "| | calls | turns | all |",
        "|---|---:|---:|---:|",
        f"| rows sent | {sent['calls']:,} | {sent['turns']:,} | "
        f"{sent['calls'] + sent['turns']:,} |",
        f"| rows in ClickHouse (FINAL) | {landed['calls']:,} | {landed['turns']:,} | "
        f"{landed['calls'] + landed['turns']:,} |",
        f"| rows/s, inserts alone | {_rate(per_table['calls'])} | {_rate(per_table['turns'])} | |",
        f"| rows/s through the sink | | | {_rate(phase['rows_per_s'])} |",
        "",
        f"Time in the sink: {phase['sink_s']} s (wall {phase['wall_s']} s with making the calls "
        f"and filling the SQL store). Active parts after: {phase['active_parts']}.",
        "",
    ]


def _summary_lines(summary: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Summary query",
        "",
        f"`summary.from_clickhouse` over {summary['from']} .. {summary['to']}, per tenant and "
        f"grouping: one warm-up run, then {summary['runs']} timed runs.",
        "",
        "| tenant | group by | calls | groups | p50 ms | p95 ms | max ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for q in summary["queries"]:
        lines.append(
            f"| {q['tenant']} | {q['group_by']} | {q['calls']:,} | {q['groups']} | "
            f"{q['p50_ms']} | {q['p95_ms']} | {q['max_ms']} |"
        )
    return [*lines, ""]


def render_markdown(report: Mapping[str, Any]) -> str:
    machine, goals = report["machine"], report["goals"]
    lines = [
        "# Analytics benchmark: ClickHouse sink and summary query",
        "",
        f"ClickHouse {report['clickhouse']['version']} ({report['clickhouse']['server']}); "
        f"{machine['cpu_count']} CPUs ({machine['cpu_model']}), load "
        f"{machine['load_avg_1m']} before and {machine['load_avg_1m_after']} after; "
        f"Python {machine['python']}.",
        "",
        "| goal | target | measured | met |",
        "|---|---:|---:|---|",
    ]
    for name, goal in goals.items():
        met = "yes" if goal["met"] else "no"
        lines.append(f"| {name} | {goal['goal']:,} | {goal['value']} | {met} |")
    lines.append("")
    lines += _phase_lines("Ingest", report["ingest"])
    lines += _phase_lines("Summary data", report["summary_data"])
    lines += _summary_lines(report["summary"])
    if not report["rows_match"]:
        lines += ["**The rows in ClickHouse do not match the rows sent.**", ""]
    return "\n".join(lines)
