"""The stream and trade-updates sections read their state from the cache: with the cache (Redis) down they
say degraded, as the cache section itself does, and never turn health unhealthy."""
import pytest

from lifecycle import health as lifecycle_health
from opitios import lastvalue
from streaming import status


def _refused(*args, **kwargs):
    raise ConnectionRefusedError("redis is down")


@pytest.mark.parametrize("section", ["streams", "trade_updates"])
def test_a_cache_outage_makes_the_section_degraded_not_unhealthy(monkeypatch, section):
    monkeypatch.setattr(lastvalue, "get_many", _refused)
    monkeypatch.setattr(lifecycle_health.cache, "get_many", _refused)
    result = {"streams": status.health_section, "trade_updates": lifecycle_health.trade_updates_section}[section]()
    assert result["status"] == "degraded"
    assert result["error"] == "status store unavailable (ConnectionRefusedError)"
