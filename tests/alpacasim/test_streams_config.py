"""Stream settings: the config file's `streams:` block and `/_sim/streams/config`, with clear refusals."""

import pytest

from alpacasim.config import load_config
from tests.helpers.sim import SimError


def test_streams_block_is_read(tmp_path):
    path = tmp_path / "sim.yml"
    path.write_text("streams:\n  tick_rate: 5\n  tick_rates: {aapl: 50}\n  symbol_limit: 30\n  auth_timeout_seconds: 2\n")
    cfg = load_config(path)
    assert (cfg.stream_tick_rate, cfg.stream_tick_rates, cfg.stream_symbol_limit, cfg.stream_auth_timeout) == (
        5.0,
        {"AAPL": 50.0},
        30,
        2.0,
    )


@pytest.mark.parametrize(
    "block",
    ["streams: [1]", "streams: {tick_rate: -1}", "streams: {tick_rates: {AAPL: 20000}}", "streams: {auth_timeout_seconds: 0}"],
)
def test_bad_streams_block_is_refused_with_a_reason(tmp_path, block):
    path = tmp_path / "sim.yml"
    path.write_text(block + "\n")
    with pytest.raises(ValueError, match="streams"):
        load_config(path)


def test_runtime_config_validates_and_reset_restores(sim):
    with pytest.raises(SimError, match="422"):
        sim.control("POST", "/_sim/streams/config", {"tick_rate": "fast"})
    with pytest.raises(SimError, match="422"):
        sim.control("POST", "/_sim/streams/config", {"symbol_limit": -3})
    state = sim.control("POST", "/_sim/streams/config", {"tick_rates": {"aapl": 25}, "symbol_limit": 4})
    assert (state["tick_rates"], state["symbol_limit"]) == ({"AAPL": 25.0}, 4)
    state = sim.control("POST", "/_sim/streams/config", {"tick_rates": {"AAPL": None}})
    assert state["tick_rates"] == {}
    sim.control("POST", "/_sim/streams/config", {"tick_rate": 7})
    sim.reset()
    state = sim.control("GET", "/_sim/streams")
    assert (state["tick_rate"], state["symbol_limit"]) == (1.0, 0)
