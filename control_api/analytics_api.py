"""`GET /v1/analytics/summary`: the acting tenant's calls over a time range, per day, agent,
disposition or transport (`control_api.analytics.summary`), from ClickHouse when the node has
`[analytics.clickhouse]` configured, else from its own SQL store. `Accept: text/csv` gives the
same as CSV.

The tenant comes from the key (the acting-tenant dependency), never from the query's values.
`from` < `to`, at most `MAX_RANGE_DAYS` apart, and at most `MAX_GROUPS` groups: 422 past them.
"""

from __future__ import annotations

import datetime
import logging
from typing import Annotated, Any

from litestar import Request, Response, Router, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ClientException, ServiceUnavailableException
from litestar.params import QueryParameter

from control_api.acting_tenant import ActingTenant, tenant_dependency
from control_api.analytics import Analytics
from control_api.analytics.clickhouse import ClickHouseError
from control_api.analytics.summary import (
    MAX_GROUPS,
    MAX_RANGE_DAYS,
    GroupBy,
    Summary,
    SummaryGroup,
    TooManyGroups,
    from_clickhouse,
    from_store,
    to_csv,
)
from control_api.api_errors import errors
from control_api.auth import Principal

log = logging.getLogger(__name__)

AnalyticsDep = NamedDependency[Analytics]
CSV_TYPE = "text/csv; charset=utf-8"


def _utc(at: datetime.datetime) -> datetime.datetime:
    return at.replace(tzinfo=datetime.UTC) if at.tzinfo is None else at.astimezone(datetime.UTC)


def _wants_csv(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip() == "text/csv" for part in accept.split(","))


async def _groups(
    analytics: Analytics,
    tenant_id: str,
    lo: datetime.datetime,
    hi: datetime.datetime,
    group_by: GroupBy,
) -> list[SummaryGroup]:
    try:
        if analytics.clickhouse is not None:
            return await from_clickhouse(analytics.clickhouse, tenant_id, lo, hi, group_by)
        return await from_store(analytics.store, tenant_id, lo, hi, group_by)
    except TooManyGroups as exc:
        raise ClientException(
            f"{exc}: narrow the range or group by another field", status_code=422
        ) from None
    except ClickHouseError as exc:
        log.warning("analytics summary: clickhouse failed", extra={"error": exc.detail})
        raise ServiceUnavailableException("the analytics store is not reachable now") from None


@get(
    "/analytics/summary",
    summary="Calls, durations and outcome mix per day, agent, disposition or transport",
    responses=errors(400, 422, 503),
)
async def analytics_summary(
    request: Request[Principal, None, State],
    analytics: AnalyticsDep,
    tenant_id: ActingTenant,
    from_: Annotated[
        datetime.datetime,
        QueryParameter(
            name="from", description="Start of the range (ISO 8601; UTC without offset)"
        ),
    ],
    to: Annotated[
        datetime.datetime,
        QueryParameter(description="End of the range, exclusive (ISO 8601; UTC without offset)"),
    ],
    group_by: Annotated[GroupBy, QueryParameter(description="What each row groups")] = "day",
) -> Summary | Response[str]:
    """Ended calls of the key's tenant started in `[from, to)`, per group. `from` < `to`, at
    most 366 days apart, at most 1000 groups (422 past them). With `Accept: text/csv`: CSV."""
    lo, hi = _utc(from_), _utc(to)
    if not lo < hi:
        raise ClientException("from: must be before to", status_code=422)
    if hi - lo > datetime.timedelta(days=MAX_RANGE_DAYS):
        raise ClientException(
            f"to: the range may span {MAX_RANGE_DAYS} days at most", status_code=422
        )
    summary = Summary(
        tenant_id=tenant_id,
        from_=lo.isoformat(),
        to=hi.isoformat(),
        group_by=group_by,
        source="clickhouse" if analytics.clickhouse is not None else "store",
        groups=await _groups(analytics, tenant_id, lo, hi, group_by),
    )
    if _wants_csv(request):
        return Response(to_csv(summary), media_type=CSV_TYPE)
    return summary


def analytics_summary_router(analytics: Analytics, **kwargs: Any) -> Router:
    def provide() -> Analytics:
        return analytics

    kwargs.setdefault("tags", ["analytics"])
    return Router(
        path="/v1",
        route_handlers=[analytics_summary],
        dependencies={
            "analytics": Provide(provide, use_cache=True, sync_to_thread=False),
            **tenant_dependency(analytics.store),
        },
        **kwargs,
    )


__all__ = ["MAX_GROUPS", "analytics_summary_router"]
