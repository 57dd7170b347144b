"""The lean send of ``TimeoutSession`` (accounts/broker/session.py) over real HTTP against alpacasim:
alpaca-py's calls skip ``Session.request`` and still fail with the same typed errors."""
from decimal import Decimal

import pytest
import requests

from accounts.broker import BrokerRejected, BrokerTimeout, BrokerUnavailable, OrderRequest, UpstreamRateLimited, broker_for
from accounts.broker.session import TimeoutSession
from tests.accounts.factories import demo_account
from tests.helpers.processes import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def acct(alpaca):
    return demo_account("account_001")


@pytest.fixture
def full_requests(monkeypatch):
    """Counts the calls that went through ``requests.Session.request`` (the path the lean send skips)."""
    calls = []
    original = requests.Session.request

    def counting(self, method, url, **kwargs):
        calls.append((method, url))
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", counting)
    return calls


def _order(client_order_id: str, **kw) -> OrderRequest:
    return OrderRequest(symbol="AAPL", side="buy", type="market", time_in_force="day", client_order_id=client_order_id,
                        qty=Decimal("1"), **kw)


def test_sdk_calls_take_the_lean_send(acct, full_requests):
    b = broker_for(acct)
    placed = b.submit_order(_order("lean-1"))
    assert placed.client_order_id == "lean-1" and placed.symbol == "AAPL"
    assert b.get_order_by_client_id("lean-1").id == placed.id  # a GET with the account's headers
    assert b.get_account().account_number
    assert full_requests == []


def test_the_session_headers_and_the_callers_are_both_sent(alpaca):
    session = TimeoutSession(max_connections=1, timeout=(3, 5))
    session.headers["X-Session-Default"] = "kept"
    try:
        # alpacasim refuses a call without both key headers: the caller's headers arrive
        response = session.request("GET", alpaca.paper_url + "/v2/account", allow_redirects=False,
                                   headers={"APCA-API-KEY-ID": "PKDEMO0000000000001", "APCA-API-SECRET-KEY": "demo-secret-0000000001"})
        assert response.status_code == 200 and response.json()["account_number"]
        assert response.request.headers["X-Session-Default"] == "kept"
        assert response.request.headers["APCA-API-KEY-ID"] == "PKDEMO0000000000001"
        refused = session.request("GET", alpaca.paper_url + "/v2/account", allow_redirects=False, headers={"X-Other": "1"})
        assert refused.status_code in (401, 403)
    finally:
        session.close()


def test_other_calls_still_go_through_session_request(alpaca, full_requests):
    session = TimeoutSession(max_connections=1, timeout=(3, 5))
    try:
        response = session.request("GET", alpaca.base_url + "/_sim/health")  # allow_redirects defaults to True
        assert response.status_code == 200
        assert full_requests == [("GET", alpaca.base_url + "/_sim/health")]
    finally:
        session.close()


def test_order_hang_past_the_read_timeout_is_a_timeout(acct, alpaca, settings, full_requests):
    settings.BROKER_READ_TIMEOUT = 0.3
    alpaca.set_fault("orders", hang=True)
    try:
        with pytest.raises(BrokerTimeout):
            broker_for(acct).submit_order(_order("lean-hang"))
    finally:
        alpaca.clear_faults()
    assert full_requests == []


@pytest.mark.parametrize(("status", "error"), [(500, BrokerUnavailable), (503, BrokerUnavailable), (504, BrokerTimeout)])
def test_order_upstream_faults_map_to_typed_errors(acct, alpaca, status, error, full_requests):
    alpaca.set_fault("orders", status=status, count=1)
    with pytest.raises(error) as info:
        broker_for(acct).submit_order(_order(f"lean-{status}"))
    assert info.value.upstream_status == status
    assert full_requests == []


def test_order_429_carries_retry_after(acct, alpaca, full_requests):
    alpaca.set_fault("orders", status=429, count=1)
    with pytest.raises(UpstreamRateLimited) as info:
        broker_for(acct).submit_order(_order("lean-429"))
    assert info.value.upstream_status == 429 and info.value.retry_after == 1  # alpacasim's Retry-After: 1
    assert full_requests == []


def test_order_rejection_carries_alpacas_code(acct, full_requests):
    with pytest.raises(BrokerRejected) as info:  # 403 insufficient buying power
        broker_for(acct).submit_order(OrderRequest(symbol="AAPL", side="buy", type="limit", time_in_force="day",
                                                   client_order_id="lean-big", qty=Decimal("100000"), limit_price=Decimal("100")))
    assert info.value.upstream_status == 403 and info.value.upstream_code
    assert full_requests == []


def test_order_to_a_closed_port_is_unavailable(acct, settings, full_requests):
    settings.ALPACA_PAPER_URL = f"http://127.0.0.1:{free_port()}/paper"
    with pytest.raises(BrokerUnavailable):
        broker_for(acct).submit_order(_order("lean-refused"))
    assert full_requests == []
