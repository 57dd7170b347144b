"""The sell-bot services against a running alpacasim over real HTTP (alpaca-py through accounts/broker.py),
called in-process; the whole-stack tests in tests/e2e/test_sellbot_worker.py run the same flow on real Celery processes."""
import time
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from sellbot import services
from sellbot.models import CancelOutcome, ManagedPosition, SellCancellation, SellDecision

from .conftest import OPTION, buy_option

pytestmark = pytest.mark.django_db(transaction=True)


def sim_orders(sim, account_number=None, side=None):
    orders = []
    for acct in sim.state()["accounts"]:
        for o in acct.get("orders", []):
            if side is None or o["side"] == side:
                orders.append(o)
    return orders


def check(account):
    return services.account_check(account_pk=account.pk, worker="test")


@pytest.fixture
def bought(sim, sim_accounts):
    sim.set_price(OPTION, bid=1.95, ask=2.00)
    account = sim_accounts["account_001"]
    buy_option(account, qty=2)
    result = check(account)
    assert result.counts.get("fills_absorbed") == 1, result
    return account


def test_fill_creates_managed_position(bought):
    mp = ManagedPosition.objects.get()
    assert (mp.symbol, mp.qty, mp.entry_price, mp.status, mp.opted_in) == (OPTION, Decimal(2), Decimal("2.00"), "open", True)
    assert len(mp.source_orders) == 1 and mp.high_water_mark == Decimal("2.00")


def test_take_profit_sells_at_the_bid(sim, bought):
    sim.set_price(OPTION, bid=2.30, ask=2.35)
    result = check(bought)
    assert result.counts.get("orders_ok") == 1, result
    decision = SellDecision.objects.get()
    mp = ManagedPosition.objects.get()
    assert (decision.reason, decision.price, decision.pl_pct, decision.order_type, decision.limit_price) == (
        "take_profit", Decimal("2.30"), Decimal("15.00"), "limit", Decimal("2.30"))
    assert decision.client_order_id == f"sb-{mp.pk}-1" and decision.outcome == "placed"
    sells = sim_orders(sim, side="sell")
    assert [(o["client_order_id"], o["status"], o["limit_price"]) for o in sells] == [(decision.client_order_id, "filled", "2.3")] or \
        [(o["client_order_id"], o["status"]) for o in sells] == [(decision.client_order_id, "filled")]
    assert AuditEvent.objects.filter(action="sell.decision").count() == 1
    check(bought)
    mp.refresh_from_db()
    assert mp.status == "closed" and mp.exit_reason == "take_profit"
    check(bought)
    assert len(sim_orders(sim, side="sell")) == 1  # never sold twice


def test_stop_loss(sim, bought):
    sim.set_price(OPTION, bid=1.55, ask=1.60)
    check(bought)
    decision = SellDecision.objects.get()
    assert (decision.reason, decision.limit_price, decision.pl_pct) == ("stop_loss", Decimal("1.55"), Decimal("-22.50"))
    assert [o["status"] for o in sim_orders(sim, side="sell")] == ["filled"]


def test_hold_in_between_raises_high_water_mark(sim, bought):
    sim.set_price(OPTION, bid=2.05, ask=2.15)
    check(bought)
    assert not SellDecision.objects.exists()
    assert ManagedPosition.objects.get().high_water_mark == Decimal("2.10")


def test_not_opted_in_is_never_touched(sim, sim_accounts):
    sim.set_price(OPTION, bid=1.95, ask=2.00)
    account = sim_accounts["account_002"]
    buy_option(account, qty=1, auto_sell=False)
    check(account)
    sim.set_price(OPTION, bid=5.00, ask=5.10)
    check(account)
    assert not ManagedPosition.objects.exists() and not SellDecision.objects.exists()
    assert sim_orders(sim, side="sell") == []


def test_opted_out_position_is_never_touched(sim, bought):
    mp = ManagedPosition.objects.get()
    services.position_set_opt_in(position=mp, opted_in=False, actor_id="admin:test")
    sim.set_price(OPTION, bid=0.50, ask=0.60)
    check(bought)
    assert sim_orders(sim, side="sell") == [] and not SellDecision.objects.exists()
    assert AuditEvent.objects.filter(action="config.changed").exists()


def test_stale_exit_cancelled_replaced_then_market(sim, bought, config_file):
    """No bid: the stop-loss exit is a limit at the minimum tick and rests. Stale -> cancelled -> re-placed;
    after max_exit_attempts cancellations the exit is a market order at the restored bid."""
    config_file.sell(order_cancel_minutes=0.0001, max_exit_attempts=2)  # 6 ms: stale at the next check
    sim.set_price(OPTION, price=1.50, illiquid=True)
    check(bought)
    first = SellDecision.objects.get()
    assert (first.reason, first.order_type, first.limit_price) == ("stop_loss", "limit", Decimal("0.01"))
    for attempt in (1, 2):
        time.sleep(0.02)  # older than the 6 ms limit
        result = check(bought)
        assert len(result.cancellations) == 1, result
        cancellation = SellCancellation.objects.get(pk=result.cancellations[0])
        outcome = services.cancellation_attempt(cancellation_pk=cancellation.pk, retries=0, max_retries=5, next_delay=None, worker="t")
        assert outcome.outcome == CancelOutcome.CANCELED
        cancellation.refresh_from_db()
        assert cancellation.attempts == 1 and cancellation.age_seconds >= 0.006 and cancellation.limit_minutes == 0.0001
        if attempt == 2:
            sim.set_price(OPTION, bid=1.40, ask=1.45, illiquid=False)  # liquidity is back for the emergency exit
        check(bought)  # re-place
    decisions = list(SellDecision.objects.order_by("attempt"))
    assert [(d.attempt, d.order_type) for d in decisions] == [(1, "limit"), (2, "limit"), (3, "market")]
    sells = sim_orders(sim, side="sell")
    assert sorted((o["client_order_id"], o["status"]) for o in sells) == sorted(
        [(decisions[0].client_order_id, "canceled"), (decisions[1].client_order_id, "canceled"), (decisions[2].client_order_id, "filled")])
    assert AuditEvent.objects.filter(action="sell.cancelled").count() == 2


def test_cancel_of_a_final_order_is_already_final(sim, bought, config_file):
    config_file.sell(order_cancel_minutes=0.0001)
    sim.set_price(OPTION, price=1.50, illiquid=True)
    check(bought)
    time.sleep(0.02)
    result = check(bought)
    row = SellCancellation.objects.get(pk=result.cancellations[0])
    sim.fill(row.order_id, price=1.50)
    outcome = services.cancellation_attempt(cancellation_pk=row.pk, retries=0, max_retries=5, next_delay=None, worker="t")
    assert outcome.outcome == CancelOutcome.ALREADY_FINAL
    # a duplicate message of a finished cancellation does nothing
    again = services.cancellation_attempt(cancellation_pk=row.pk, retries=0, max_retries=5, next_delay=None, worker="t")
    row.refresh_from_db()
    assert again.outcome == CancelOutcome.ALREADY_FINAL and row.attempts == 1


def test_cancel_transient_errors_retry_then_fail(sim, bought, config_file):
    config_file.sell(order_cancel_minutes=0.0001)
    sim.set_price(OPTION, price=1.50, illiquid=True)
    check(bought)
    time.sleep(0.02)
    row = SellCancellation.objects.get(pk=check(bought).cancellations[0])
    sim.set_fault("order_cancel", status=503)
    first = services.cancellation_attempt(cancellation_pk=row.pk, retries=0, max_retries=1, next_delay=0.5, worker="t")
    assert first.retry and first.outcome == CancelOutcome.RETRYING
    last = services.cancellation_attempt(cancellation_pk=row.pk, retries=1, max_retries=1, next_delay=1.0, worker="t")
    row.refresh_from_db()
    assert not last.retry and row.outcome == CancelOutcome.FAILED and row.attempts == 2 and "broker_unavailable" in row.error
    sim.clear_faults()
    # a failed cancellation of a still-open stale order is dispatched again by the next check
    assert check(bought).cancellations == [row.pk]


def test_a_lost_cancel_of_an_order_filled_since_is_dispatched_again_and_ends(sim, bought, config_file):
    """The cancel task was lost (a killed worker) and the order then filled: the order is no longer
    open, so only the row remembers it. After the grace the check dispatches it again; the attempt ends
    it as already_final instead of leaving it pending for ever (and the account in every sweep)."""
    from datetime import timedelta

    from django.utils import timezone

    from sellbot.selectors import accounts_to_sweep, sell_config

    config_file.sell(order_cancel_minutes=0.0001)
    sim.set_price(OPTION, price=1.50, illiquid=True)
    check(bought)
    time.sleep(0.02)
    row = SellCancellation.objects.get(pk=check(bought).cancellations[0])  # never run: the task is lost
    sim.fill(row.order_id, price=1.50)
    assert check(bought).cancellations == []  # within the grace its task may still be queued
    SellCancellation.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert check(bought).cancellations == [row.pk]
    outcome = services.cancellation_attempt(cancellation_pk=row.pk, retries=0, max_retries=5, next_delay=None, worker="t")
    assert outcome.outcome == CancelOutcome.ALREADY_FINAL
    assert check(bought).cancellations == []
    assert bought.pk not in accounts_to_sweep(config=sell_config())


def test_cancel_scope(sim, sim_accounts, config_file):
    """sell_orders ignores a resting buy; all_orders includes it; bot_orders only sb- ids."""
    from tests.sellbot.conftest import buy_option as _  # noqa: F401
    from trading.intents import OPTION as US_OPTION
    from trading.intents import OrderIntent
    from trading.services import order_place

    account = sim_accounts["account_001"]
    sim.set_price(OPTION, bid=1.95, ask=2.00)
    buy_option(account, qty=1)  # opted in, so the account is swept
    order_place(account=account, intent=OrderIntent(symbol=OPTION, side="buy", type="limit", time_in_force="day", asset_class=US_OPTION,
                                                    qty=Decimal(1), limit_price=Decimal("1.00")), source="api", user_id="t")
    config_file.sell(order_cancel_minutes=0.0001, cancel_scope="sell_orders")
    assert check(account).cancellations == []
    config_file.sell(cancel_scope="bot_orders")
    assert check(account).cancellations == []
    config_file.sell(cancel_scope="all_orders", order_cancel_minutes_by_type={"limit": 60})
    assert check(account).cancellations == []  # the per-type limit wins
    config_file.sell(order_cancel_minutes_by_type={"limit": 0.0001})
    time.sleep(0.02)
    assert len(check(account).cancellations) == 1


def test_stopped_bot_does_nothing(sim, bought):
    services.bot_control(action="stop", actor_id="admin")
    sim.set_price(OPTION, bid=2.50, ask=2.55)
    assert check(bought).skipped == "stopped"
    assert sim_orders(sim, side="sell") == []


def test_account_lock_prevents_a_second_check(bought):
    from sellbot.locks import held_lock

    with held_lock(f"account:{bought.pk}", ttl=10) as mine:
        assert mine
        assert check(bought).skipped == "locked"


def test_refused_or_failed_exits_are_not_cancellations(sim, bought, config_file):
    """Only an exit the broker cancelled or expired counts towards the emergency market order: a broker
    fault (no order reached the market) is retried at the same shape, however many sweeps it lasts."""
    config_file.sell(max_exit_attempts=2)
    sim.set_price(OPTION, bid=1.55, ask=1.60)  # stop loss
    sim.set_fault("orders", status=503)
    try:
        for _ in range(4):
            check(bought)
    finally:
        sim.clear_faults()
    mp = ManagedPosition.objects.get()
    assert mp.exit_cancellations == 0
    assert {d.outcome for d in SellDecision.objects.all()} == {"failed"}
    check(bought)
    last = SellDecision.objects.order_by("-attempt").first()
    assert (last.order_type, last.limit_price, last.outcome) == ("limit", Decimal("1.55"), "placed")
    assert [o["type"] for o in sim_orders(sim, side="sell")] == ["limit"]


def test_untradable_accounts_are_not_swept(sim, bought):
    from accounts.models import AlpacaAccount
    from sellbot.selectors import accounts_to_sweep, sell_config

    assert accounts_to_sweep(config=sell_config()) == [bought.pk]
    sim.set_price(OPTION, bid=1.55, ask=1.60)  # would be a stop loss
    for change in ({"type_mismatch": True}, {"type_source": "unknown"}, {"type_source": "fallback", "paper_trading": False}):
        AlpacaAccount.objects.filter(pk=bought.pk).update(type_mismatch=False, type_source="detected", paper_trading=True)
        AlpacaAccount.objects.filter(pk=bought.pk).update(**change)
        assert accounts_to_sweep(config=sell_config()) == [], change
        for _ in range(3):
            assert check(bought).skipped == "account_not_tradable"
    assert not SellDecision.objects.exists() and sim_orders(sim, side="sell") == []
    from trading.models import OrderRecord

    assert not OrderRecord.objects.filter(source="sellbot").exists()
    AlpacaAccount.objects.filter(pk=bought.pk).update(type_source="fallback", paper_trading=True)  # paper safe mode trades
    assert accounts_to_sweep(config=sell_config()) == [bought.pk]
