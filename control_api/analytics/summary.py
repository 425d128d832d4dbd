"""A tenant's call summary over a time range, per group (day, agent, disposition, transport):
calls, total and mean duration, outcome mix, sentiment mix, voice-to-voice p50/p95 and the
barge-in rate — from ClickHouse when configured (`from_clickhouse`), else from the node's SQL
store (`from_store`). Only ended calls count, by their start time in `[from, to)`.

The tenant is always a filter of the query and is given by the caller (the route takes it from
the key). Nothing from a request becomes SQL: the group is one of four fixed expressions, and
values go to ClickHouse as the external table `p` (`clickhouse.ClickHouse.select`) and to the
SQL store as bound parameters.

Voice-to-voice per group: p50 is the median of the calls' medians, p95 the 95th percentile of
the calls' p95s (the outbox carries each call's summary, not every turn's). The barge-in rate
is the share of agent turns the caller interrupted (ClickHouse only: the SQL store's path does
not read transcripts, and says null).
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Sequence
from typing import Any, Final, Literal, get_args

import msgspec
from sqlalchemy import select

from agents.outcome import DISPOSITIONS, SentimentLabel
from control_api.analytics.clickhouse import ClickHouse
from control_api.analytics.tables import CallRow
from control_api.store import Store
from core.errors import Refused

GroupBy = Literal["day", "agent", "disposition", "transport"]
SENTIMENTS: Final[tuple[str, ...]] = get_args(SentimentLabel)
MAX_RANGE_DAYS: Final = 366
MAX_GROUPS: Final = 1000


class TooManyGroups(Refused, ValueError):
    """More than `MAX_GROUPS` groups (narrow the range or pick another grouping; a
    `ValueError` too, as it always was)."""


class SummaryGroup(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    """The day (`YYYY-MM-DD`, UTC), agent, disposition or transport."""
    calls: int
    total_duration_s: float
    mean_duration_s: float
    outcomes: dict[str, int]
    """Calls per disposition."""
    sentiments: dict[str, int]
    """Calls per sentiment label."""
    voice_to_voice_ms_p50: float | None = None
    voice_to_voice_ms_p95: float | None = None
    barge_in_rate: float | None = None


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    from_: str = msgspec.field(name="from")
    to: str
    group_by: GroupBy
    source: Literal["clickhouse", "store"]
    groups: list[SummaryGroup]


def quantile(values: Sequence[float], q: float) -> float | None:
    """ClickHouse's `quantileExact`: the sorted value at index ⌊q·n⌋."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _ch_time(at: datetime.datetime) -> str:
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


_CH_KEYS: Final[dict[str, str]] = {
    "day": "toString(toDate(started_at))",
    "agent": "agent",
    "disposition": "disposition",
    "transport": "transport",
}


def clickhouse_sql(database: str, group_by: GroupBy) -> str:
    """The summary query: constants of this module, the configured database name, and one of
    the fixed group expressions; its values come from the external table `p`."""
    mixes = [f"countIf(disposition = '{d}') AS d_{d}" for d in DISPOSITIONS]
    mixes += [f"countIf(sentiment = '{s}') AS s_{s}" for s in SENTIMENTS]
    return (
        f"SELECT {_CH_KEYS[group_by]} AS key, count() AS calls, sum(duration_s) AS total,"
        f" {', '.join(mixes)}, quantileExact(0.5)(v2v_p50_ms) AS p50,"
        " quantileExact(0.95)(v2v_p95_ms) AS p95, sum(barge_ins) AS barge_ins,"
        " sum(agent_turns) AS agent_turns"
        f" FROM {database}.calls FINAL"
        " WHERE tenant_id = (SELECT tenant FROM p)"
        " AND started_at >= (SELECT lo FROM p) AND started_at < (SELECT hi FROM p)"
        f" GROUP BY key ORDER BY key LIMIT {MAX_GROUPS + 1}"
    )


async def from_clickhouse(
    ch: ClickHouse,
    tenant_id: str,
    lo: datetime.datetime,
    hi: datetime.datetime,
    group_by: GroupBy,
) -> list[SummaryGroup]:
    rows = await ch.select(
        clickhouse_sql(ch.database, group_by),
        {"tenant": tenant_id, "lo": _ch_time(lo), "hi": _ch_time(hi)},
        "tenant String, lo DateTime, hi DateTime",
    )
    if len(rows) > MAX_GROUPS:
        raise TooManyGroups(f"more than {MAX_GROUPS} groups")
    groups = []
    for row in rows:
        calls, total = int(row["calls"]), float(row["total"])
        agent_turns = int(row["agent_turns"])
        groups.append(
            SummaryGroup(
                key=str(row["key"]),
                calls=calls,
                total_duration_s=round(total, 3),
                mean_duration_s=round(total / calls, 3) if calls else 0.0,
                outcomes={d: int(row[f"d_{d}"]) for d in DISPOSITIONS},
                sentiments={s: int(row[f"s_{s}"]) for s in SENTIMENTS},
                voice_to_voice_ms_p50=_float(row["p50"]),
                voice_to_voice_ms_p95=_float(row["p95"]),
                barge_in_rate=round(int(row["barge_ins"]) / agent_turns, 4)
                if agent_turns
                else None,
            )
        )
    return groups


class _Acc:
    def __init__(self) -> None:
        self.calls = 0
        self.total = 0.0
        self.outcomes: dict[str, int] = dict.fromkeys(DISPOSITIONS, 0)
        self.sentiments: dict[str, int] = dict.fromkeys(SENTIMENTS, 0)
        self.p50s: list[float] = []
        self.p95s: list[float] = []

    def add(
        self,
        duration: float | None,
        disposition: str | None,
        sentiment: str | None,
        latency: dict[str, Any] | None,
    ) -> None:
        self.calls += 1
        self.total += duration or 0.0
        if disposition in self.outcomes:
            self.outcomes[disposition] += 1
        if sentiment in self.sentiments:
            self.sentiments[sentiment] += 1
        latency = latency or {}
        if isinstance(p50 := latency.get("voice_to_voice_ms_p50"), int | float):
            self.p50s.append(float(p50))
        if isinstance(p95 := latency.get("voice_to_voice_ms_p95"), int | float):
            self.p95s.append(float(p95))

    def group(self, key: str) -> SummaryGroup:
        return SummaryGroup(
            key=key,
            calls=self.calls,
            total_duration_s=round(self.total, 3),
            mean_duration_s=round(self.total / self.calls, 3) if self.calls else 0.0,
            outcomes=self.outcomes,
            sentiments=self.sentiments,
            voice_to_voice_ms_p50=quantile(self.p50s, 0.5),
            voice_to_voice_ms_p95=quantile(self.p95s, 0.95),
        )


async def from_store(
    store: Store,
    tenant_id: str,
    lo: datetime.datetime,
    hi: datetime.datetime,
    group_by: GroupBy,
) -> list[SummaryGroup]:
    stmt = select(
        CallRow.started_at,
        CallRow.agent,
        CallRow.disposition,
        CallRow.transport,
        CallRow.duration_s,
        CallRow.sentiment,
        CallRow.latency,
    ).where(
        CallRow.tenant_id == tenant_id,
        CallRow.ended_at.is_not(None),
        CallRow.started_at >= lo,
        CallRow.started_at < hi,
    )
    groups: dict[str, _Acc] = {}
    async with store.session() as session:
        result = await session.stream(stmt.execution_options(yield_per=1000))
        async for started, agent, disposition, transport, duration, sentiment, latency in result:
            key = {
                "day": started.astimezone(datetime.UTC).date().isoformat(),
                "agent": agent,
                "disposition": disposition or "",
                "transport": transport,
            }[group_by]
            if key not in groups and len(groups) >= MAX_GROUPS:
                raise TooManyGroups(f"more than {MAX_GROUPS} groups")
            groups.setdefault(key, _Acc()).add(duration, disposition, sentiment, latency)
    return [groups[key].group(key) for key in sorted(groups)]


def to_csv(summary: Summary) -> str:
    """One line per group; the mixes as `outcome_<disposition>` / `sentiment_<label>` columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            summary.group_by,
            "calls",
            "total_duration_s",
            "mean_duration_s",
            *(f"outcome_{d}" for d in DISPOSITIONS),
            *(f"sentiment_{s}" for s in SENTIMENTS),
            "voice_to_voice_ms_p50",
            "voice_to_voice_ms_p95",
            "barge_in_rate",
        ]
    )
    for g in summary.groups:
        key = "'" + g.key if g.key[:1] in ("=", "+", "-", "@") else g.key  # no spreadsheet formulas
        optional = (g.voice_to_voice_ms_p50, g.voice_to_voice_ms_p95, g.barge_in_rate)
        writer.writerow(
            [
                key,
                g.calls,
                g.total_duration_s,
                g.mean_duration_s,
                *(g.outcomes.get(d, 0) for d in DISPOSITIONS),
                *(g.sentiments.get(s, 0) for s in SENTIMENTS),
                *("" if v is None else v for v in optional),
            ]
        )
    return out.getvalue()
