"""An accepted order asks for its account's balance refresh after the commit, and the request thread
sends no Celery message: the coalescer's thread does (accounts/balance_refresh.py). Real path:
APIClient -> DRF -> order service -> alpaca-py -> alpacasim; only the Celery send is recorded."""
from __future__ import annotations

import threading

import pytest

from accounts import balance_refresh
from accounts.models import AlpacaAccount
from tests.accounts.test_balance_refresh import Sends, wait_for
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

from .test_api_sim import ORDER, live, trader  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_accepted_order_asks_for_its_refresh_off_the_request_path(live, monkeypatch):  # noqa: F811
    sends = Sends()
    monkeypatch.setattr(balance_refresh, "coalescer", balance_refresh.Coalescer(send=sends, window=lambda: 1.0))
    callers = []
    real = balance_refresh.coalescer.request
    monkeypatch.setattr(balance_refresh.coalescer, "request", lambda pk: (callers.append(threading.current_thread()), real(pk)))
    monkeypatch.setattr(balance_refresh.coalescer, "_send", lambda pk: (callers.append(threading.current_thread()), sends(pk)))
    r = trader().post("/api/v1/stocks/order", ORDER, format="json")
    assert r.status_code == 201, r.json()
    pk = AlpacaAccount.objects.get(account_id="account_001").pk
    wait_for(lambda: any(p == pk for p, _ in sends.at), "the account's refresh")
    # asked on commit in the request thread; sent by the coalescer's own thread
    assert callers[0] is threading.current_thread() and callers[1].name == "balance-refresh"
