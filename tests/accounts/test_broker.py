"""The broker seam over real HTTP: typed errors per fault mode, conversions, no SDK retries, timeouts."""
from datetime import UTC
from decimal import Decimal

import pytest

from accounts import broker
from accounts.broker import (
    BrokerError,
    BrokerNotFound,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    OrderRequest,
    UpstreamRateLimited,
    broker_for,
)
from tests.accounts.factories import demo_account
from tests.helpers.processes import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def acct(alpaca):
    return demo_account("account_001")


def test_account_and_clock_are_converted(acct):
    b = broker_for(acct)
    info = b.get_account()
    assert info.account_number.startswith("PA")
    assert info.cash == Decimal("100000") and isinstance(info.buying_power, Decimal)
    clock = b.get_clock()
    assert clock.timestamp.tzinfo is not None and clock.next_open.utcoffset().total_seconds() == 0


def test_order_round_trip_is_converted(acct):
    b = broker_for(acct)
    order = b.submit_order(OrderRequest(symbol="AAPL", side="buy", type="limit", time_in_force="day", client_order_id="t-1", qty=Decimal("2"), limit_price=Decimal("1.00")))
    assert order.client_order_id == "t-1" and order.qty == Decimal("2") and order.limit_price == Decimal("1.00")
    assert order.created_at.tzinfo == UTC and order.submitted_at.tzinfo == UTC
    assert order.raw["client_order_id"] == "t-1"
    assert b.get_order(order.id).id == order.id
    assert b.get_order_by_client_id("t-1").id == order.id
    assert b.get_order_by_client_id("nope") is None
    assert [o.id for o in b.list_orders(status="open")] == [order.id]
    b.cancel_order(order.id)
    assert b.get_order(order.id).status in ("canceled", "pending_cancel")
    assert b.get_position("AAPL") is None


def test_order_calls_read_the_json_as_the_model_path_does(acct):
    """Order calls convert Alpaca's JSON directly (no alpaca-py Order model): the same BrokerOrder as
    the model path (list_orders) gives for the same order, apart from ``raw``."""
    b = broker_for(acct)
    for n, (kind, extra) in enumerate([("limit", {"qty": Decimal("2"), "limit_price": Decimal("1.25")}),
                                       ("market", {"notional": Decimal("150.50")}),
                                       ("stop", {"qty": Decimal("1"), "stop_price": Decimal("999")})]):
        b.submit_order(OrderRequest(symbol="AAPL", side="buy", type=kind, time_in_force="day", client_order_id=f"raw-{n}", **extra))
    listed = {o.client_order_id: o for o in b.list_orders(status="all")}
    for n in range(3):
        direct = b.get_order_by_client_id(f"raw-{n}")
        model = listed[f"raw-{n}"]
        assert direct.raw["client_order_id"] == f"raw-{n}"
        assert {**vars(direct), "raw": None} == {**vars(model), "raw": None}


def test_an_unreadable_order_answer_is_a_broker_error(acct, monkeypatch):
    b = broker_for(acct)
    monkeypatch.setattr(b._orders, "submit_order", lambda request: {"status": "accepted"})  # no id
    with pytest.raises(BrokerError, match="Unexpected answer from Alpaca"):
        b.submit_order(OrderRequest(symbol="AAPL", side="buy", type="market", time_in_force="day", client_order_id="t-x", qty=Decimal("1")))


def test_positions_are_converted(acct):
    b = broker_for(acct)
    b.submit_order(OrderRequest(symbol="AAPL", side="buy", type="market", time_in_force="day", client_order_id="t-2", qty=Decimal("3")))
    (position,) = b.get_positions()
    assert position.symbol == "AAPL" and position.qty == Decimal("3") and position.side == "long"
    assert b.get_position("AAPL").avg_entry_price > 0


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (500, BrokerUnavailable, "broker_unavailable"),
        (502, BrokerUnavailable, "broker_unavailable"),
        (503, BrokerUnavailable, "broker_unavailable"),
        (504, BrokerTimeout, "broker_timeout"),
        (429, UpstreamRateLimited, "upstream_rate_limited"),
    ],
)
def test_upstream_faults_map_to_typed_errors(acct, alpaca, status, error, code):
    # count=1: if the SDK retried (it sleeps and retries 429/504 by default), the call would succeed.
    alpaca.set_fault("account", status=status, count=1)
    with pytest.raises(error) as info:
        broker_for(acct).get_account()
    assert info.value.code == code and info.value.upstream_status == status
    if status == 429:
        assert info.value.retry_after and info.value.retry_after >= 1
    assert broker_for(acct).get_account().account_number  # the fault is gone: no retry consumed it


def test_order_submission_429_is_returned_at_once(acct, alpaca):
    alpaca.set_fault("orders", status=429, count=1)
    with pytest.raises(UpstreamRateLimited):
        broker_for(acct).submit_order(OrderRequest(symbol="AAPL", side="buy", type="market", time_in_force="day", client_order_id="t-3", qty=Decimal("1")))
    assert broker_for(acct).get_order_by_client_id("t-3") is None


def test_hang_past_the_read_timeout_is_a_timeout(acct, alpaca, settings):
    settings.BROKER_READ_TIMEOUT = 0.3
    alpaca.set_fault("account", hang=True)
    try:
        with pytest.raises(BrokerTimeout):
            broker_for(acct).get_account()
        with pytest.raises(BrokerTimeout):  # the per-call timeout (balance check) wins
            broker_for(acct).get_account(timeout=0.2)
    finally:
        alpaca.clear_faults()


def test_connection_refused_is_unavailable(acct, settings):
    settings.ALPACA_PAPER_URL = f"http://127.0.0.1:{free_port()}/paper"
    with pytest.raises(BrokerUnavailable):
        broker_for(acct).get_account()


def test_rejections_not_found_and_credentials(acct, alpaca):
    b = broker_for(acct)
    with pytest.raises(BrokerRejected) as info:  # 403 insufficient buying power
        b.submit_order(OrderRequest(symbol="AAPL", side="buy", type="limit", time_in_force="day", client_order_id="big", qty=Decimal("100000"), limit_price=Decimal("100")))
    assert info.value.upstream_status == 403 and info.value.http_status == 422
    b.submit_order(OrderRequest(symbol="AAPL", side="buy", type="limit", time_in_force="day", client_order_id="dup", qty=Decimal("1"), limit_price=Decimal("1")))
    with pytest.raises(BrokerRejected) as info:  # 422 duplicate client_order_id
        b.submit_order(OrderRequest(symbol="AAPL", side="buy", type="limit", time_in_force="day", client_order_id="dup", qty=Decimal("1"), limit_price=Decimal("1")))
    assert info.value.upstream_status == 422 and info.value.upstream_code
    with pytest.raises(BrokerNotFound):
        b.get_order("00000000-0000-0000-0000-000000000000")
    wrong = demo_account("account_002")
    wrong.api_key_encrypted = demo_account("account_001").api_key_encrypted  # key of 001, secret of 002
    with pytest.raises(BrokerError) as info:
        broker_for(wrong).get_account()
    assert info.value.upstream_status == 401 and type(info.value) is BrokerError


def test_clients_are_built_without_network_and_keep_alive_bounded(acct, settings):
    settings.ALPACA_PAPER_URL = f"http://127.0.0.1:{free_port()}/paper"  # nothing listens: building must not call
    acct.max_connections = 3
    b = broker_for(acct)
    adapter = b._session.get_adapter("http://x")
    assert adapter._pool_maxsize == 3 and adapter.max_retries.total == 0
    for client in (b._trading, b._orders, b._stocks, b._options):
        assert client._session is b._session and client._retry == 0 and client._retry_codes == []
    assert b._session.default_timeout == (settings.BROKER_CONNECT_TIMEOUT, settings.BROKER_READ_TIMEOUT)


def test_pool_notices_added_disabled_and_edited_accounts(alpaca):
    a1 = demo_account("account_001")
    assert [b.account_id for b in broker.pool_accounts()] == ["account_001"]
    a2 = demo_account("account_002")
    assert [b.account_id for b in broker.pool_accounts()] == ["account_001", "account_002"]
    first = broker.pool().get("account_001")
    a1.enabled = False
    a1.save()
    assert [b.account_id for b in broker.pool_accounts()] == ["account_002"]
    same = broker.pool().get("account_002")
    a2.max_connections = 4
    a2.save()
    rebuilt = broker.pool().get("account_002")
    assert rebuilt is not same and rebuilt._session.get_adapter("http://x")._pool_maxsize == 4
    a2.name = "renamed"
    a2.save()
    assert broker.pool().get("account_002") is rebuilt, "an edit that does not touch the clients keeps them (and their connections)"
    assert first is not None
