"""Market-data routing and the per-account upstream budget, over real HTTP."""
import time
from collections import Counter

import pytest
from django.test import override_settings

from accounts import budget, routing
from accounts.broker import UpstreamRateLimited, broker_for, market_data, pool
from accounts.models import AlpacaAccount
from opitios.config import TradingConfig
from tests.accounts.conftest import clear_counters
from tests.accounts.factories import AlpacaAccountFactory, demo_account, demo_accounts

pytestmark = pytest.mark.django_db


def served() -> Counter:
    """Upstream requests per account id in the current minute, from the shared counters."""
    accounts = {a.pk: a.account_id for a in AlpacaAccount.objects.all()}
    stats = budget.stats_for({pk: 200 for pk in accounts})
    return Counter({accounts[pk]: s.requests_last_minute for pk, s in stats.items() if s.requests_last_minute})


@pytest.fixture
def strategy(monkeypatch):
    def use(name: str) -> None:
        config = type("C", (), {"trading": TradingConfig(routing_strategy=name)})()
        monkeypatch.setattr("opitios.config.current_config", lambda: config)

    return use


def test_round_robin_spreads_evenly(alpaca, strategy):
    demo_accounts()
    strategy("round_robin")
    for _ in range(40):
        market_data().stock_quotes(["AAPL"])
    assert served() == Counter({"account_001": 10, "account_002": 10, "account_003": 10, "account_004": 10})


def test_random_uses_every_account(alpaca, strategy):
    demo_accounts()
    strategy("random")
    for _ in range(80):
        market_data().stock_quotes(["MSFT"])
    counts = served()
    assert sum(counts.values()) == 80 and len(counts) == 4 and min(counts.values()) >= 8


def test_hash_keeps_a_symbol_on_one_account(alpaca, strategy):
    demo_accounts()
    strategy("hash")
    for _ in range(5):
        market_data().stock_quotes(["AAPL"])
    assert list(served().values()) == [5]


def test_least_loaded_prefers_the_most_remaining_budget(alpaca, strategy):
    accounts = demo_accounts()
    strategy("least_loaded")
    for a in accounts[:3]:  # spend budget on three of the four
        for _ in range(5):
            market_data().stock_quotes(["AAPL"], account_id=a.account_id)
    market_data().stock_quotes(["AAPL"])
    assert served()["account_004"] == 1


def test_account_id_picks_exactly_and_routing_key_is_sticky(alpaca, strategy):
    demo_accounts()
    strategy("round_robin")
    quote = market_data().stock_quotes(["AAPL"], account_id="account_003")["AAPL"]
    assert quote.ask >= quote.bid > 0
    for _ in range(6):
        market_data().stock_quotes(["SPY"], routing_key="client-42")
    counts = served()
    assert counts["account_003"] >= 1 and sorted(counts.values())[-1] >= 6


def test_routing_key_stable_when_accounts_are_added():
    before = [f"acct_{i}" for i in range(10)]
    after = before + [f"acct_{i}" for i in range(10, 12)]
    keys = [f"user-{n}" for n in range(2000)]
    moved = [k for k in keys if routing.rendezvous(k, before)[0] != routing.rendezvous(k, after)[0]]
    assert all(routing.rendezvous(k, after)[0] in ("acct_10", "acct_11") for k in moved)
    assert 0.1 < len(moved) / len(keys) < 0.25  # about 2/12 of the keys move, only to the new accounts


def test_routing_key_stable_over_the_pool(alpaca):
    demo_accounts()
    keys = [f"k{n}" for n in range(40)]
    first = {}
    for k in keys:
        clear_counters()
        market_data().stock_quotes(["AAPL"], routing_key=k)
        first[k] = next(iter(served()))
    AlpacaAccountFactory(account_id="account_005", api_key="PKDEMO0000000000001", secret_key="demo-secret-0000000001")
    pool().invalidate()
    for k in keys:
        clear_counters()
        market_data().stock_quotes(["AAPL"], routing_key=k)
        now = next(iter(served()))
        assert now in (first[k], "account_005")


def test_market_data_routes_around_an_exhausted_account(alpaca, strategy):
    accounts = demo_accounts()
    AlpacaAccount.objects.filter(account_id="account_002").update(rate_limit_per_minute=1)
    strategy("round_robin")
    market_data().stock_quotes(["AAPL"], account_id="account_002")  # spends its whole budget
    for _ in range(30):
        market_data().stock_quotes(["AAPL"])
    counts = served()
    assert counts["account_002"] == 1 and sum(counts.values()) == 31
    assert accounts


def test_trading_on_an_exhausted_account_is_rate_limited(alpaca):
    account = demo_account("account_001", rate_limit_per_minute=2)
    b = broker_for(account)
    b.get_account()
    b.get_account()
    with pytest.raises(UpstreamRateLimited) as info:
        b.get_account()
    assert info.value.retry_after >= 1 and info.value.http_status == 429 and info.value.upstream_status is None
    with pytest.raises(UpstreamRateLimited):  # explicit account_id: no routing around it
        market_data().stock_quotes(["AAPL"], account_id="account_001")


def test_every_account_exhausted(alpaca, strategy):
    for a in demo_accounts():
        a.rate_limit_per_minute = 1
        a.save()  # as the admin does: updated_at tells every process's pool
        market_data().stock_quotes(["AAPL"], account_id=a.account_id)
    strategy("random")
    with pytest.raises(UpstreamRateLimited) as info:
        market_data().stock_quotes(["AAPL"])
    assert info.value.retry_after >= 1


def test_upstream_429_on_market_data_moves_to_another_account(alpaca, strategy):
    demo_accounts()
    strategy("round_robin")
    alpaca.set_fault("data_quotes", status=429, count=1)
    assert market_data().stock_quotes(["AAPL"])["AAPL"].ask


def test_sliding_window_budget_and_retry_after():
    limit = 10
    for _ in range(10):
        assert budget.reserve(99, limit, now=600.0).allowed
    refused = budget.reserve(99, limit, now=630.0)
    assert not refused.allowed and refused.retry_after == 30
    # Next window: the previous one still weighs (1 - elapsed) of its count.
    assert not budget.reserve(99, limit, now=660.0).allowed
    assert budget.reserve(99, limit, now=715.0).allowed


def test_cache_down_falls_back_to_process_counters(caplog):
    down = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
                        "OPTIONS": {"socket_connect_timeout": 0.1, "socket_timeout": 0.1}}}
    with override_settings(CACHES=down):
        budget.counters._failed_at = 0
        assert budget.reserve(7, 2).allowed and budget.reserve(7, 2).allowed
        assert not budget.reserve(7, 2).allowed
        assert budget.counters.degraded
    assert "counting per process" in caplog.text
    clear_counters()


def _stored(keys: list[str]) -> dict[str, int]:
    """What the shared store holds, bypassing this process's deferred deltas."""
    backend = budget.caches["default"]
    if isinstance(backend, budget.EmbeddedCache):
        return backend.counters.get_many(keys)
    found = backend.get_many(keys)
    return {k: int(v) for k, v in found.items()}


def test_call_statistics_ride_with_the_next_round_trip_or_flush_within_a_second():
    window, _ = budget.window_of(time.time())
    done, lat = budget._key(41, "done", window), budget._key(41, "lat_us", window)
    budget.record(41, latency_ms=2.5, error=False)
    assert _stored([done]) == {}, "recorded without a round trip of its own"
    assert budget.reserve(42, 100).allowed  # any round trip carries the deferred deltas
    assert _stored([done, lat]) == {done: 1, lat: 2500}

    budget.record(41, latency_ms=1.0, error=True)
    deadline = time.monotonic() + 5
    while _stored([done]).get(done) != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _stored([done]).get(done) == 2, "an idle process flushes on its own"
    stats = budget.stats_for({41: 100})[41]
    assert stats.errors_last_minute == 1 and stats.avg_latency_ms == pytest.approx(1.75)
    clear_counters()


def test_deferred_statistics_survive_a_dead_store(caplog):
    down = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
                        "OPTIONS": {"socket_connect_timeout": 0.1, "socket_timeout": 0.1}}}
    with override_settings(CACHES=down):
        budget.counters._failed_at = 0
        budget.record(43, latency_ms=3.0, error=True)
        assert budget.reserve(44, 10).allowed  # fails over to this process, the deferred deltas with it
        stats = budget.stats_for({43: 10})[43]
        assert stats.errors_last_minute == 1 and stats.avg_latency_ms == pytest.approx(3.0)
    clear_counters()
