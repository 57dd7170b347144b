"""Reads for the compliance console and detailed health."""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from accounts.models import AlpacaAccount, TypeSource
from audit.models import AuditChainCheck, AuditChainHead

PERCENTILES = (0.5, 0.95, 0.99)


def chain_status() -> dict:
    head = AuditChainHead.objects.filter(pk=AuditChainHead.SINGLETON).values_list("seq", flat=True).first()
    check = AuditChainCheck.objects.order_by("-ran_at").first()
    last = None
    if check is not None:
        last = {
            "ran_at": check.ran_at, "ok": check.ok, "count": check.count, "last_seq": check.last_seq,
            "first_broken_seq": check.first_broken_seq, "reason": check.reason, "since_seq": check.since_seq,
            "source": check.source, "duration_ms": check.duration_ms,
        }
    return {"head_seq": head or 0, "last_check": last}


def compliance_status() -> dict:
    """What needs a compliance officer's eye, for the admin index and /admin/compliance/."""
    from accounts.selectors import stale_balances
    from opitios.health import check_config

    config = check_config()
    return {
        "config_errors": config["config_errors"],
        "skipped_accounts": sorted(config["account_errors"].items()),
        "mismatches": list(mismatched_accounts()),
        "failures": list(detection_failures()),
        "stale": stale_balances(),
        "chain": chain_status(),
    }


def account_type_distribution() -> dict[str, int]:
    """Paper and live as detected, fallback (detection failed: treated as paper), not yet detected."""
    rows = AlpacaAccount.objects.values("account_type", "type_source").annotate(n=Count("id"))
    result = {"paper": 0, "live": 0, "fallback": 0, "undetected": 0}
    for row in rows:
        if row["type_source"] == TypeSource.FALLBACK:
            result["fallback"] += row["n"]
        elif row["type_source"] == TypeSource.UNKNOWN:
            result["undetected"] += row["n"]
        else:
            result[row["account_type"]] = result.get(row["account_type"], 0) + row["n"]
    return result


def mismatched_accounts():
    return AlpacaAccount.objects.filter(type_mismatch=True).only("id", "account_id", "name", "account_type", "paper_trading", "detected_at")


def detection_failures():
    return AlpacaAccount.objects.filter(type_source=TypeSource.FALLBACK).only("id", "account_id", "name", "detection_error", "detected_at")


def orders_today_by_outcome(model, *, now: dt.datetime | None = None) -> dict[str, int]:
    start = _day_start(now or timezone.now())
    rows = model.objects.filter(received_at__gte=start).values("outcome").annotate(n=Count("pk")).order_by("outcome")
    return {row["outcome"]: row["n"] for row in rows}


def order_latency_daily(model, *, days: int = 7, now: dt.datetime | None = None) -> list[dict]:
    """Per UTC day, oldest first: count and p50/p95/p99 of ``total_ms`` (percentile_cont semantics)."""
    today = _day_start(now or timezone.now())
    since = today - dt.timedelta(days=days - 1)
    by_day = _latency_sql(model, since) if connection.vendor == "postgresql" else _latency_python(model, since)
    result = []
    for offset in range(days):
        day = (since + dt.timedelta(days=offset)).date()
        entry = by_day.get(day)
        result.append({"day": day, "count": entry[0] if entry else 0,
                       **{f"p{round(q * 100)}": (entry[1][i] if entry else None) for i, q in enumerate(PERCENTILES)}})
    return result


def percentile_cont(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    if not sorted_values:
        raise ValueError("no values")
    position = q * (len(sorted_values) - 1)
    low, high = math.floor(position), math.ceil(position)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def _day_start(moment: dt.datetime) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _latency_sql(model, since: dt.datetime) -> dict:
    table = connection.ops.quote_name(model._meta.db_table)
    received = connection.ops.quote_name(model._meta.get_field("received_at").column)
    total = connection.ops.quote_name(model._meta.get_field("total_ms").column)
    # Identifiers come from the model's meta, quoted; values are parameters.
    sql = " ".join([  # noqa: S608
        f"SELECT ({received} AT TIME ZONE 'UTC')::date AS day, count(*),",
        f"percentile_cont(ARRAY[%s, %s, %s]) WITHIN GROUP (ORDER BY {total})",
        f"FROM {table} WHERE {received} >= %s AND {total} IS NOT NULL GROUP BY 1",
    ])
    with connection.cursor() as cursor:
        cursor.execute(sql, [*PERCENTILES, since])
        return {day: (count, [float(v) for v in values]) for day, count, values in cursor.fetchall()}


def _latency_python(model, since: dt.datetime) -> dict:
    values: dict[dt.date, list[float]] = defaultdict(list)
    rows = model.objects.filter(received_at__gte=since, total_ms__isnull=False).values_list("received_at", "total_ms")
    for received_at, total_ms in rows.iterator(chunk_size=5000):
        values[received_at.astimezone(dt.UTC).date()].append(float(total_ms))
    result = {}
    for day, day_values in values.items():
        day_values.sort()
        result[day] = (len(day_values), [percentile_cont(day_values, q) for q in PERCENTILES])
    return result
