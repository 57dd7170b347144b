"""The latency monitor, read from the order ledger (``OrderRecord``): p50/p95/p99 of total, broker and
overhead ms, with accept/refuse/reject/fail rates, over the last N days, by UTC day, UTC hour of day,
order type and source. Orders the gateway placed only: an external order (seen on the trade-updates
stream) has no gateway timing and no gateway outcome. On PostgreSQL one scan (GROUPING SETS, percentile_cont); elsewhere in Python
with the same percentile (``opitios.stats.percentile_cont``). The page reads ``latency_monitor_cached``: the
figures of each window are computed at most every CACHE_SECONDS (one scan of up to a month of orders is
too slow to repeat per page view), and the page says when they were computed."""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from opitios.stats import percentile_cont
from trading.models import OrderRecord, Outcome, Source

PERCENTILES = (0.5, 0.95, 0.99)
MEASURES = ("total_ms", "broker_ms", "overhead_ms")
OUTCOMES = (Outcome.ACCEPTED, Outcome.REFUSED, Outcome.REJECTED, Outcome.FAILED)
DIMENSIONS = ("all", "day", "hour", "order_type", "source")
DEFAULT_DAYS, MAX_DAYS = 7, 31
# GROUPING(d, h, t, s) of each grouping set: a bit is 1 where the column is not grouped.
_MASKS = {15: "all", 7: "day", 11: "hour", 13: "order_type", 14: "source"}
CACHE_SECONDS = 30
_CACHE_KEY = "desk:latency:{days}"

logger = logging.getLogger("opitios.desk")


def latency_monitor_cached(*, days: int = DEFAULT_DAYS) -> dict:
    """``latency_monitor`` computed at most every CACHE_SECONDS per window, with ``computed_at`` and
    ``compute_ms``; a cache that fails only costs the computation."""
    days = max(1, min(int(days), MAX_DAYS))
    key = _CACHE_KEY.format(days=days)
    try:
        cached = cache.get(key)
    except Exception:  # noqa: BLE001 - the cache is an optimisation here
        logger.warning("latency monitor: cache read failed", exc_info=True)
        cached = None
    if cached is not None:
        return cached
    started = time.perf_counter()
    result = latency_monitor(days=days)
    result.update(computed_at=timezone.now(), compute_ms=round((time.perf_counter() - started) * 1000, 1))
    try:
        cache.set(key, result, CACHE_SECONDS)
    except Exception:  # noqa: BLE001
        logger.warning("latency monitor: cache write failed", exc_info=True)
    return result


def forget_cached() -> None:
    cache.delete_many([_CACHE_KEY.format(days=days) for days in range(1, MAX_DAYS + 1)])


def latency_monitor(*, days: int = DEFAULT_DAYS, now: dt.datetime | None = None) -> dict:
    days = max(1, min(int(days), MAX_DAYS))
    now = now or timezone.now()
    since = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=days - 1)
    groups = _sql(since) if connection.vendor == "postgresql" else _python(since)
    result = {dimension: [] for dimension in DIMENSIONS}
    for (dimension, key), (count, outcomes, percentiles) in groups.items():
        result[dimension].append({
            "key": key, "count": count,
            "rates": {o.value: (100.0 * outcomes.get(o.value, 0) / count if count else None) for o in OUTCOMES},
            **{measure: dict(zip(("p50", "p95", "p99"), percentiles[measure], strict=True)) for measure in MEASURES},
        })
    for rows in result.values():
        rows.sort(key=lambda row: (row["key"] is None, row["key"]))
    return {"days": days, "since": since, "groups": result,
            "calendar": [(since + dt.timedelta(days=n)).date() for n in range(days)]}


def _sql(since: dt.datetime) -> dict:
    meta, q = OrderRecord._meta, connection.ops.quote_name
    col = {name: q(meta.get_field(name).column) for name in ("received_at", "order_type", "source", "outcome", *MEASURES)}
    pct = ", ".join(f"percentile_cont(ARRAY[%s, %s, %s]) WITHIN GROUP (ORDER BY {m})" for m in MEASURES)
    counts = ", ".join("count(*) FILTER (WHERE outcome = %s)" for _ in OUTCOMES)
    # Identifiers come from the model's meta, quoted; values are parameters.
    sql = " ".join([  # noqa: S608
        f"SELECT GROUPING(d, h, t, s), d, h, t, s, count(*), {counts}, {pct} FROM (",  # noqa: S608
        f"SELECT ({col['received_at']} AT TIME ZONE 'UTC')::date AS d,",
        f"extract(hour FROM {col['received_at']} AT TIME ZONE 'UTC')::int AS h, {col['order_type']} AS t, {col['source']} AS s,",
        f"{col['outcome']} AS outcome, {col['total_ms']} AS total_ms, {col['broker_ms']} AS broker_ms, {col['overhead_ms']} AS overhead_ms",
        f"FROM {q(meta.db_table)} WHERE {col['received_at']} >= %s AND {col['outcome']} <> %s AND {col['source']} <> %s) AS x",
        "GROUP BY GROUPING SETS ((), (d), (h), (t), (s))",
    ])
    params = [o.value for o in OUTCOMES] + [*PERCENTILES] * len(MEASURES) + [since, Outcome.PENDING.value, Source.EXTERNAL.value]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '64MB'")  # fifteen percentile sorts of up to a month of orders, in memory
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    groups = {}
    for mask, d, h, t, s, count, *rest in rows:
        dimension = _MASKS[mask]
        key = {"all": "all", "day": d, "hour": h, "order_type": t, "source": s}[dimension]
        outcomes = {o.value: n for o, n in zip(OUTCOMES, rest[:len(OUTCOMES)], strict=True)}
        percentiles = {m: [float(v) if v is not None else None for v in (values or [None] * 3)]
                       for m, values in zip(MEASURES, rest[len(OUTCOMES):], strict=True)}
        groups[(dimension, key)] = (count, outcomes, percentiles)
    return groups


def _python(since: dt.datetime) -> dict:
    buckets: dict[tuple, dict] = defaultdict(lambda: {"count": 0, "outcomes": defaultdict(int), **{m: [] for m in MEASURES}})
    rows = (OrderRecord.objects.filter(received_at__gte=since).exclude(outcome=Outcome.PENDING).exclude(source=Source.EXTERNAL)
            .values_list("received_at", "order_type", "source", "outcome", *MEASURES))
    for received_at, order_type, source, outcome, *values in rows.iterator(chunk_size=5000):
        at = received_at.astimezone(dt.UTC)
        for key in (("all", "all"), ("day", at.date()), ("hour", at.hour), ("order_type", order_type), ("source", source)):
            bucket = buckets[key]
            bucket["count"] += 1
            bucket["outcomes"][outcome] += 1
            for measure, value in zip(MEASURES, values, strict=True):
                if value is not None:
                    bucket[measure].append(float(value))
    groups = {}
    for key, bucket in buckets.items():
        percentiles = {}
        for measure in MEASURES:
            values = sorted(bucket[measure])
            percentiles[measure] = [percentile_cont(values, q) if values else None for q in PERCENTILES]
        groups[key] = (bucket["count"], dict(bucket["outcomes"]), percentiles)
    return groups
