import threading

import pytest
from django.core.cache import cache

from accounts import broker, budget, crypto
from tests.helpers.sim import sim, sim_server  # noqa: F401  (fixtures)


def clear_counters() -> None:
    cache.clear()
    budget.counters.clear_local()
    budget.counters.degraded = False


@pytest.fixture(autouse=True)
def _fresh_pool_and_counters():
    """Budget counters are keyed by account pk, which a new test database reuses."""
    clear_counters()
    broker.reset_pool()
    crypto.reset_keys()
    yield
    broker.reset_pool()


@pytest.fixture
def alpaca(sim, settings):  # noqa: F811
    """The running alpacasim (reset) with the gateway's Alpaca endpoints pointed at it."""
    settings.ALPACA_PAPER_URL = sim.paper_url
    settings.ALPACA_LIVE_URL = sim.live_url
    settings.ALPACA_DATA_URL = sim.data_url
    settings.ACCOUNTS_POOL_REFRESH_SECONDS = 0
    broker.reset_pool()
    return sim


@pytest.fixture
def round_trips(monkeypatch):
    """Round trips to the shared store made by this thread (a spy: every call still goes through)."""
    calls = []
    real = budget.counters._incr
    me = threading.get_ident()

    def spy(*args, **kwargs):
        if threading.get_ident() == me:
            calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(budget.counters, "_incr", spy)
    return calls
