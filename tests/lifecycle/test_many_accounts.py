"""Many accounts on one listener process: one trade-updates connection each, all connected and caught up,
and an order of any of them reaches the ledger. 200 here; the 1,000-account proof is slow-marked."""
from __future__ import annotations

from decimal import Decimal

import pytest

from accounts import broker as broker_seam
from accounts import crypto
from accounts.broker import OrderRequest, broker_for
from accounts.models import AlpacaAccount
from alpacasim.accounts import generated_credentials
from tests.audit.conftest import requires_postgres
from tests.helpers.sim import SimServer
from tests.helpers.sim_streams import wait_for
from tests.lifecycle.conftest import ListenerThread
from trading.models import OrderEvent

pytestmark = [pytest.mark.django_db(transaction=True), requires_postgres]


def _connect(n: int, settings, config_file) -> None:
    with SimServer(config=None, accounts=n, seed=7, rate_limit=False, extra_args=["--clock", "open"]) as sim:
        settings.ALPACA_PAPER_URL, settings.ALPACA_LIVE_URL, settings.ALPACA_DATA_URL = sim.paper_url, sim.live_url, sim.data_url
        broker_seam.reset_pool()
        AlpacaAccount.objects.bulk_create([
            AlpacaAccount(account_id=f"acct_{i:04d}", name=f"acct_{i:04d}", paper_trading=True, account_type="paper",
                          type_source="detected", api_key_encrypted=crypto.encrypt(key), secret_key_encrypted=crypto.encrypt(secret))
            for i, (key, secret) in ((i, generated_credentials(i)) for i in range(1, n + 1))
        ])
        runner = ListenerThread(poll_seconds=1.0, threads=8).start()
        try:
            runner.wait_connected(n, timeout=60 + n * 0.2)
            assert sim.control("GET", "/_sim/streams")["listening"]["paper/stream"] == n
            health = runner.health()
            assert (health["accounts_expected"], health["accounts_connected"], health["status"]) == (n, n, "ok")
            for pk in AlpacaAccount.objects.order_by("?").values_list("pk", flat=True)[:3]:
                account = AlpacaAccount.objects.get(pk=pk)
                order = broker_for(account).submit_order(OrderRequest(symbol="AAPL", side="buy", type="market", time_in_force="day",
                                                                      client_order_id=f"many-{pk}", qty=Decimal(1)))
                fill = wait_for(lambda o=order: OrderEvent.objects.filter(broker_order_id=o.id, event="fill").first(), timeout=30,
                                what="fill of one of many accounts")
                assert fill.account_id == pk and not fill.reconciled
        finally:
            runner.stop()
            broker_seam.reset_pool()


def test_200_accounts_connected(settings, config_file):
    _connect(200, settings, config_file)


@pytest.mark.slow
def test_1000_accounts_connected(settings, config_file):
    _connect(1000, settings, config_file)
