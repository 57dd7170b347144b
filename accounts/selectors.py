"""Account reads: pool statistics and the accounts health section (docs/operations.md, "Health")."""
from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Max, OuterRef, Q, Subquery
from django.utils import timezone

from accounts import budget
from accounts.models import AccountType, AlpacaAccount, BalanceSnapshot, TypeSource
from audit.selectors import chain_status
from opitios.config import current_config


def tradable_accounts():
    """Accounts orders may be placed on (``AlpacaAccount.tradable`` as a query): enabled, a valid
    secrets.yml entry, not mismatched, and with a trusted paper/live type (detected, or a
    paper-configured fallback)."""
    return AlpacaAccount.objects.filter(enabled=True, config_error="", type_mismatch=False).filter(
        Q(type_source=TypeSource.DETECTED) | Q(type_source=TypeSource.FALLBACK, paper_trading=True)
    )


def accounts_with_last_balance():
    newest = BalanceSnapshot.objects.filter(account=OuterRef("pk")).order_by("-fetched_at")
    return AlpacaAccount.objects.annotate(
        last_cash=Subquery(newest.values("cash")[:1]),
        last_buying_power=Subquery(newest.values("buying_power")[:1]),
        last_equity=Subquery(newest.values("equity")[:1]),
        last_fetched_at=Subquery(newest.values("fetched_at")[:1]),
    )


def type_totals() -> dict:
    agg = AlpacaAccount.objects.aggregate(
        n_paper=Count("pk", filter=Q(account_type=AccountType.PAPER, type_source=TypeSource.DETECTED)),
        n_live=Count("pk", filter=Q(account_type=AccountType.LIVE, type_source=TypeSource.DETECTED)),
        n_fallback=Count("pk", filter=Q(type_source=TypeSource.FALLBACK)),
        n_undetected=Count("pk", filter=Q(type_source=TypeSource.UNKNOWN)),
        n_enabled=Count("pk", filter=Q(enabled=True)),
        n_disabled=Count("pk", filter=Q(enabled=False)),
        n_mismatch=Count("pk", filter=Q(type_mismatch=True)),
        n_total=Count("pk"),
    )
    return {
        "by_type": {k: agg[f"n_{k}"] for k in ("paper", "live", "fallback", "undetected")},
        "by_state": {k: agg[f"n_{k}"] for k in ("enabled", "disabled", "mismatch")},
        "total": agg["n_total"],
    }


def pool_statistics() -> dict:
    now = timezone.now()
    accounts = list(accounts_with_last_balance().order_by("account_id"))
    stats = budget.stats_for({a.pk: a.rate_limit_per_minute for a in accounts})
    rows = []
    for a in accounts:
        s = stats[a.pk]
        rows.append(
            {
                "id": a.account_id,
                "name": a.name,
                "tier": a.tier,
                "enabled": a.enabled,
                "type": a.account_type,
                "type_source": a.type_source,
                "configured_type": AccountType.PAPER if a.paper_trading else AccountType.LIVE,
                "type_mismatch": a.type_mismatch,
                "config_error": a.config_error,
                "account_number": a.account_number,
                "detected_at": a.detected_at,
                "detection_error": a.detection_error,
                "rate_limit_per_minute": a.rate_limit_per_minute,
                "requests_last_minute": s.requests_last_minute,
                "errors_last_minute": s.errors_last_minute,
                "avg_latency_ms": s.avg_latency_ms,
                "budget_remaining": s.budget_remaining,
                "last_balance": None
                if a.last_fetched_at is None
                else {
                    "cash": a.last_cash,
                    "buying_power": a.last_buying_power,
                    "equity": a.last_equity,
                    "fetched_at": a.last_fetched_at,
                    "age_seconds": round((now - a.last_fetched_at).total_seconds(), 1),
                },
            }
        )
    return {
        **type_totals(),
        "routing_strategy": current_config().trading.routing_strategy,
        "budget_store": "shared" if budget.counters.shared else "process",
        "accounts": rows,
    }


def balance_stale_after_seconds(trading) -> float:
    """A balance older than three missed refreshes (at least a minute) is stale."""
    return max(3 * trading.balance_refresh_seconds, 60)


def stale_balances(*, limit: int = 50) -> dict:
    """Enabled accounts whose newest balance snapshot is stale or missing (only while balance checks are on)."""
    trading = current_config().trading
    after = balance_stale_after_seconds(trading)
    if not trading.balance_check_enabled:
        return {"checked": False, "after_seconds": after, "count": 0, "accounts": []}
    cutoff = timezone.now() - timedelta(seconds=after)
    stale = (accounts_with_last_balance().filter(enabled=True)
             .filter(Q(last_fetched_at__isnull=True) | Q(last_fetched_at__lt=cutoff)).order_by("account_id"))
    return {"checked": True, "after_seconds": after, "count": stale.count(), "accounts": list(stale[:limit])}


def accounts_health() -> dict:
    """The accounts section of /health/detailed."""
    totals = type_totals()
    trading = current_config().trading
    last = BalanceSnapshot.objects.aggregate(at=Max("fetched_at"))["at"]
    age = (timezone.now() - last).total_seconds() if last else None
    mismatched = list(AlpacaAccount.objects.filter(enabled=True, type_mismatch=True).values_list("account_id", flat=True)[:50])
    failed = list(
        AlpacaAccount.objects.filter(enabled=True, type_source=TypeSource.FALLBACK).values("account_id", "detection_error")[:50]
    )
    # Not tradable because their secrets.yml entry is invalid; flagged because settings were dropped.
    config_invalid = list(AlpacaAccount.objects.exclude(config_error="").values("account_id", "enabled", "config_error")[:50])
    config_flagged = list(AlpacaAccount.objects.exclude(config_warning="").values("account_id", "config_warning")[:50])
    stale = trading.balance_check_enabled and (age is None or age > balance_stale_after_seconds(trading))
    status = "ok"
    if mismatched or failed or stale or budget.counters.degraded or config_invalid or config_flagged:
        status = "degraded"
    if totals["by_state"]["enabled"] == 0:
        status = "unhealthy"
    return {
        "status": status,
        **totals,
        "mismatches": mismatched,
        "detection_failures": failed,
        "config_invalid": config_invalid,
        "config_flagged": config_flagged,
        "budget_store": "shared" if budget.counters.shared else ("process (Redis down)" if budget.counters.degraded else "process (no shared store)"),
        "balance_check": {
            "enabled": trading.balance_check_enabled,
            "minimum_balance": str(trading.minimum_balance),
            "refresh_seconds": trading.balance_refresh_seconds,
            "max_age_seconds": trading.balance_max_age_seconds,
            "timeout_ms": trading.balance_check_timeout_ms,
            "fallback_max_age_seconds": trading.balance_fallback_max_age_seconds,
            "fail_closed": trading.balance_check_fail_closed,
            "last_refresh_at": last.isoformat() if last else None,
            "last_refresh_age_seconds": round(age, 1) if age is not None else None,
        },
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


def config_problems() -> dict:
    """secrets.yml as it reads now (errors, with the defaults that applied) and the accounts the last
    sync found invalid (not tradable) or flagged (settings dropped): the admin index shows them."""
    config = current_config()
    return {
        "config_errors": list(config.config_errors),
        "invalid_accounts": list(AlpacaAccount.objects.exclude(config_error="").values("pk", "account_id", "config_error")[:50]),
        "flagged_accounts": list(
            AlpacaAccount.objects.filter(config_error="").exclude(config_warning="").values("pk", "account_id", "config_warning")[:50]
        ),
    }


def compliance_status() -> dict:
    """What needs a compliance officer's eye, for the admin index and /admin/compliance/: config errors,
    accounts skipped or not tradable, type mismatches, detection failures, stale balances, the chain."""
    return {
        **config_problems(),
        "skipped_accounts": sorted(current_config().account_errors.items()),
        "mismatches": list(mismatched_accounts()),
        "failures": list(detection_failures()),
        "stale": stale_balances(),
        "chain": chain_status(),
    }
