"""Reads for the trading API: which account a request addresses, its effective balance settings,
and the newest balance snapshot."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from accounts import balance_cache
from accounts.account_cache import account_by_id
from accounts.models import AlpacaAccount, BalanceSnapshot
from opitios.config import ACCOUNT_ID_RE, TradingConfig, current_config
from opitios.errors import ApplicationError
from opitios.stats import percentile_cont

from .models import OrderRecord


def _named_account_id(value, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ApplicationError("invalid_request", "The request is invalid.",
                               details={"fields": {"account_id": [f"The {where}'s account_id must be a non-empty string of at most 64 characters."]}})
    return value


def requested_account_id(request) -> str | None:
    """The account a request names: ``account_id`` in the query string or in the JSON body.

    Both may be given only if they agree (else 400 ``account_id_conflict``): a request must never
    trade one account while naming another.
    """
    named_in_query = list(dict.fromkeys(request.query_params.getlist("account_id")))
    if len(named_in_query) > 1:
        raise ApplicationError("account_id_conflict", f"The query string names {len(named_in_query)} accounts; name one.",
                               details={"query": named_in_query[:20]})
    query = _named_account_id(named_in_query[0] if named_in_query else None, "query string")
    data = request.data
    body = _named_account_id(data.get("account_id"), "body") if isinstance(data, dict) else None
    if query is not None and body is not None and query != body:
        raise ApplicationError("account_id_conflict", f"The query string names account {query} and the body names {body}; name one account.",
                               details={"query": query, "body": body})
    return query or body


def account_resolve(*, requested_id: str | None, token_account_id: str | None, is_admin: bool,
                    accounts_version: int | None = None) -> AlpacaAccount:
    """The account a trading or account-data request addresses.

    ``account_id`` from the request, else the token's ``account_id`` claim; never auto-routed.
    - neither given: 400 ``account_required``;
    - a non-admin naming an account that is not the token's own: 403 ``account_forbidden``
      (answered before the lookup, so other account ids cannot be probed);
    - unknown id: 404 ``account_not_found``.
    Whether the account may trade (enabled, not mismatched) is decided by the order flow, which
    records the refusal; reads of a disabled account are refused here by ``account_readable``.
    """
    account_id = requested_id or token_account_id
    if not account_id:
        raise ApplicationError(
            "account_required",
            "Name the account with account_id (query or body), or use a token that carries an account_id claim.",
        )
    if not is_admin and account_id != token_account_id:
        raise ApplicationError(
            "account_forbidden", f"Your token does not give access to account {account_id}."
        )
    account = account_by_id(account_id, version=accounts_version) if ACCOUNT_ID_RE.match(account_id) else None
    if account is None:
        raise ApplicationError("account_not_found", f"Account {account_id} does not exist.")
    return account


def account_readable(account: AlpacaAccount) -> AlpacaAccount:
    if not account.enabled:
        raise ApplicationError("account_disabled", f"Account {account.account_id} is disabled.")
    return account


def trading_config() -> TradingConfig:
    return current_config().trading


@dataclass(frozen=True)
class BalanceSettings:
    enabled: bool
    minimum_balance: Decimal
    max_age_seconds: int
    timeout_ms: int
    fallback_max_age_seconds: int
    fail_closed: bool
    block_reducing_sells: bool


def balance_settings(account: AlpacaAccount) -> BalanceSettings:
    """Effective settings: the account's override (from the database row, read at check time),
    else the global ``trading`` section as the file says now."""
    cfg = trading_config()
    return BalanceSettings(
        enabled=cfg.balance_check_enabled if account.balance_check_enabled is None else account.balance_check_enabled,
        minimum_balance=cfg.minimum_balance if account.minimum_balance is None else account.minimum_balance,
        max_age_seconds=cfg.balance_max_age_seconds,
        timeout_ms=cfg.balance_check_timeout_ms,
        fallback_max_age_seconds=cfg.balance_fallback_max_age_seconds,
        fail_closed=cfg.balance_check_fail_closed,
        block_reducing_sells=cfg.block_reducing_sells,
    )


def balance_snapshot_newest(*, account: AlpacaAccount, since: datetime) -> BalanceSnapshot | None:
    """The newest snapshot fetched at ``since`` or later: from the cache its writers keep
    (accounts/balance_cache.py), else from the database."""
    cached = balance_cache.snapshot_newest(account_pk=account.pk, since=since)
    if cached is not None:
        return cached
    return (
        BalanceSnapshot.objects.filter(account=account, fetched_at__gte=since).order_by("-fetched_at").only("cash", "fetched_at").first()
    )


def order_record_current(*, account: AlpacaAccount, client_order_id: str) -> OrderRecord | None:
    return OrderRecord.objects.filter(account=account, client_order_id=client_order_id, is_current=True).first()


def _percentile(sorted_values: list[float], p: float) -> float | None:
    """The same interpolated percentile as the compliance landing page (PostgreSQL's percentile_cont)."""
    return round(percentile_cont(sorted_values, p / 100), 3) if sorted_values else None


def order_latency_daily(queryset) -> list[dict]:
    """p50/p95/p99 of total_ms and overhead_ms per UTC day, newest day first (computed in Python,
    so it runs the same on SQLite and PostgreSQL)."""
    days: dict = {}
    for received_at, total, overhead in queryset.exclude(total_ms=None).values_list("received_at", "total_ms", "overhead_ms").iterator():
        bucket = days.setdefault(received_at.date(), ([], []))
        bucket[0].append(total)
        if overhead is not None:
            bucket[1].append(overhead)
    rows = []
    for day in sorted(days, reverse=True):
        totals, overheads = sorted(days[day][0]), sorted(days[day][1])
        rows.append({
            "day": day.isoformat(), "count": len(totals),
            **{f"total_p{p}": _percentile(totals, p) for p in (50, 95, 99)},
            **{f"overhead_p{p}": _percentile(overheads, p) for p in (50, 95, 99)},
        })
    return rows


def order_timeline(record: OrderRecord) -> list[dict]:
    """The steps of one order, oldest first, each with its time and the time since the previous step.

    Checks (validation, balance) run between received and submitted and have no timestamp of their own.
    Broker events (``OrderEvent``: fills, cancels, ...) follow, at the broker's timestamps."""
    steps = [
        ("received", record.received_at, ""),
        ("checks", None, f"balance: {record.balance_status}" if record.balance_status else ""),
        ("submitted", record.submitted_at, "recovered from the broker" if record.recovered else ""),
        ("responded", record.responded_at, record.broker_status),
        ("completed", record.completed_at, record.outcome),
    ]
    for event in record.events.order_by("broker_at", "pk"):
        steps.append((f"broker-{event.event}", event.broker_at, _event_note(event)))
    timeline, previous = [], None
    for name, at, note in steps:
        timeline.append({"step": name, "at": at, "previous": previous if at is not None else None, "note": note})
        previous = at or previous
    return timeline


def _event_note(event) -> str:
    parts = [f"status {event.order_status}"] if event.order_status else []
    if event.qty is not None:
        parts.append(f"{event.qty.normalize():f} @ {event.price.normalize():f}" if event.price is not None else f"qty {event.qty.normalize():f}")
    if event.position_qty is not None:
        parts.append(f"position {event.position_qty.normalize():f}")
    if event.reconciled:
        parts.append("recovered over REST after a stream gap")
    return "; ".join(parts)


def order_record_by_broker_id(*, account: AlpacaAccount, broker_order_id: str) -> OrderRecord | None:
    """The newest record of the account's broker order (the gateway's own, or the ledger's ``external`` one)."""
    return OrderRecord.objects.filter(account=account, broker_order_id=broker_order_id).order_by("-received_at").first()
