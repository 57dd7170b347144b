"""The traffic monitor. Sources, both already recorded by the project:

- requests per endpoint, error and throttle rates: the Prometheus counters (``opitios/metrics.py``) read from
  ``metrics.exposition()``: every web process's counts in multiprocess mode (what /metrics serves), since
  the processes started: ``opitios_http_requests`` (URL pattern × status class), ``opitios_throttled_requests``
  (by throttle scope), ``opitios_upstream_calls`` and ``opitios_upstream_429``;
- upstream budget use per account: the shared per-minute counters of ``accounts/budget.py`` (the same
  sliding window the broker adapter enforces), one cache read for every enabled account.
"""
from __future__ import annotations

from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

from accounts import budget
from accounts.models import AlpacaAccount
from opitios import metrics

BUDGET_ROWS = 50
BUSY_PERCENT = 80


def _samples() -> dict[str, list]:
    found: dict[str, list] = defaultdict(list)
    text = metrics.exposition(with_collectors=False).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                found[sample.name].append((sample.labels, sample.value))
    return found


def _rate(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


def endpoint_traffic() -> dict:
    samples = _samples()
    by_route: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for labels, value in samples["opitios_http_requests_total"]:
        by_route[labels["route"]][labels["status"]] += value
    rows = []
    for route, statuses in by_route.items():
        total = sum(statuses.values())
        errors = sum(v for status, v in statuses.items() if status in ("4xx", "5xx"))
        rows.append({"route": route or "/", "requests": int(total), "errors": int(errors), "error_rate": _rate(errors, total),
                     "server_errors": int(statuses.get("5xx", 0)), "throttled": int(statuses.get("429", 0)),
                     "throttle_rate": _rate(statuses.get("429", 0), total)})
    rows.sort(key=lambda row: (-row["requests"], row["route"]))
    total = sum(row["requests"] for row in rows)
    throttles = {labels["scope"]: int(value) for labels, value in samples["opitios_throttled_requests_total"]}
    upstream: dict[str, dict[str, int]] = defaultdict(dict)
    for labels, value in samples["opitios_upstream_calls_total"]:
        upstream[labels["account"]][labels["result"]] = int(value)
    for labels, value in samples["opitios_upstream_429_total"]:
        upstream[labels["account"]]["429"] = int(value)
    return {
        "routes": rows, "total": total,
        "error_rate": _rate(sum(row["errors"] for row in rows), total),
        "throttle_rate": _rate(sum(row["throttled"] for row in rows), total),
        "throttles": dict(sorted(throttles.items())),
        "upstream": dict(sorted(upstream.items())),
    }


def budget_use(*, limit: int = BUDGET_ROWS) -> dict:
    """Every enabled account's upstream calls in the last minute against its ``rate_limit_per_minute``;
    the busiest ``limit`` shown."""
    accounts = list(AlpacaAccount.objects.filter(enabled=True).values_list("pk", "account_id", "rate_limit_per_minute"))
    stats = budget.stats_for({pk: limit_per_minute for pk, _, limit_per_minute in accounts})
    rows = []
    for pk, account_id, limit_per_minute in accounts:
        s = stats[pk]
        use = _rate(s.requests_last_minute, limit_per_minute) or 0.0
        rows.append({"pk": pk, "account_id": account_id, "limit": limit_per_minute, "requests": s.requests_last_minute,
                     "errors": s.errors_last_minute, "avg_latency_ms": s.avg_latency_ms, "remaining": s.budget_remaining, "use": use})
    rows.sort(key=lambda row: (-row["use"], row["account_id"]))
    return {
        "rows": [row for row in rows if row["requests"]][:limit],
        "accounts": len(rows), "active": sum(1 for row in rows if row["requests"]),
        "busy": sum(1 for row in rows if row["use"] >= BUSY_PERCENT), "busy_percent": BUSY_PERCENT,
        "store": "shared" if budget.counters.shared else "process",
    }
