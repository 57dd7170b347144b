"""What the listener does with one event, and with a reconnect: synchronous services, run in threads."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts.broker import BrokerNotFound, broker_for
from accounts.broker.contract import TradeUpdate
from accounts.models import AlpacaAccount
from sellbot.fill_events import buy_fill_absorb, exit_fill_close
from trading import ledger

logger = logging.getLogger("opitios.lifecycle")


def _after_write(account: AlpacaAccount, recorded: ledger.Recorded, order) -> None:
    if recorded.filled > 0:
        buy_fill_absorb(account=account, record=recorded.record, order=order)
        exit_fill_close(account=account, record=recorded.record, order=order)


def update_handle(*, account: AlpacaAccount, update: TradeUpdate) -> ledger.Recorded:
    recorded = ledger.trade_update_record(account=account, update=update)
    _after_write(account, recorded, update.order)
    return recorded


def updates_handle(groups: list[tuple[AlpacaAccount, list[TradeUpdate]]]) -> list[Exception | None]:
    """Several accounts' events, each account's in its stream's order: one ledger transaction for all
    (a burst costs one commit, not one per event), then the sell bot's side of each fill. When the batch
    fails, each account's events are written again on their own, so one bad event fails only its own
    account (whose stream then reconnects and reconciles). Per group: None, or the exception that stopped it."""
    items = [(account, update) for account, updates in groups for update in updates]
    try:
        recorded = ledger.trade_updates_record(items)
    except Exception as exc:  # noqa: BLE001 - retried one by one below, where each failure is its account's
        logger.warning("trade updates batch of %s not recorded (%s); writing them one by one", len(items), exc.__class__.__name__)
        return [_group_handle(account, updates) for account, updates in groups]
    outcomes: list[Exception | None] = []
    start = 0
    for account, updates in groups:
        try:
            for update, done in zip(updates, recorded[start:start + len(updates)], strict=True):
                _after_write(account, done, update.order)
            outcomes.append(None)
        except Exception as exc:  # noqa: BLE001 - reported to the account's stream
            outcomes.append(exc)
        start += len(updates)
    return outcomes


def _group_handle(account: AlpacaAccount, updates: list[TradeUpdate]) -> Exception | None:
    try:
        for update in updates:
            update_handle(account=account, update=update)
    except Exception as exc:  # noqa: BLE001 - reported to the account's stream
        return exc
    return None


def account_reconcile(*, account: AlpacaAccount) -> int:
    """Recover what the stream may have missed (before the first connection, or across a gap): every
    order created since the account's last event (less a margin), and every order the ledger still has as
    open. alpacasim and Alpaca's trading API have no account-activities feed the gateway uses, so orders
    are the source (docs/architecture.md). The number of events recovered."""
    broker = broker_for(account)
    last = ledger.last_event_at(account=account)
    since = (last - timedelta(seconds=settings.LIFECYCLE_RECONCILE_MARGIN_SECONDS) if last
             else timezone.now() - timedelta(hours=settings.LIFECYCLE_RECONCILE_LOOKBACK_HOURS))
    orders = {o.id: o for o in broker.list_orders(status="all", limit=500, after=since)}
    for order_id in ledger.open_order_ids(account=account):
        if order_id not in orders:
            try:
                orders[order_id] = broker.get_order(order_id)
            except BrokerNotFound:
                continue
    recovered = 0
    for order in sorted(orders.values(), key=lambda o: o.submitted_at or o.created_at or timezone.now()):
        for recorded in ledger.order_reconcile(account=account, order=order):
            if not recorded.duplicate:
                recovered += 1
            _after_write(account, recorded, order)
    if recovered:
        logger.warning("trade updates reconciled account=%s events=%s", account.account_id, recovered)
    return recovered
