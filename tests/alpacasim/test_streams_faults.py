"""Stream faults from /_sim/streams/faults, as alpaca-py's stream clients experience them."""

import time

import pytest

from tests.helpers.sim import SimError
from tests.helpers.sim_streams import connections, wait_for


def _fault(sim, **body) -> dict:
    return sim.control("POST", "/_sim/streams/faults", body)


def _quotes(streams, symbol="AAPL", **kw):
    runner = streams(**kw)
    runner.client.subscribe_quotes(runner.handler, symbol)
    runner.start()
    runner.data()
    return runner


def test_drop_the_client_sees_it_and_reconnects(sim, streams):
    runner = _quotes(streams)
    assert _fault(sim, action="drop", feed="v2/iex")["touched"] == 1
    runner.log("data websocket error, restarting connection")
    runner.log("subscribed to quotes: ['AAPL']")  # a new connection, authenticated and resubscribed
    runner.data()
    wait_for(lambda: connections(sim) == {"v2/iex": 1}, what="exactly one connection again")


def test_stall_trips_the_clients_data_timeout(sim, streams):
    sim.control("POST", "/_sim/streams/config", {"tick_rate": 20})
    runner = _quotes(streams, data_timeout=1.0)
    _fault(sim, action="stall", feed="v2/iex", seconds=30)
    runner.log("no data received on data stream for 1.0s, reconnecting")
    runner.data()  # the stall held the old connection only; the new one streams
    wait_for(lambda: connections(sim) == {"v2/iex": 1}, what="the stalled connection gone")


def test_delay_holds_every_message_back(sim, streams):
    sim.control("POST", "/_sim/streams/config", {"tick_rate": 10})
    runner = _quotes(streams)
    _fault(sim, action="delay", feed="*", ms=600)
    deadline = time.monotonic() + 15
    while True:  # frames queued before the fault may still arrive on time; wait for a delayed one
        quote = runner.data()
        lag = time.time() - quote.timestamp.timestamp()
        if lag >= 0.55 or time.monotonic() > deadline:
            break
    assert 0.55 <= lag < 5
    sim.control("POST", "/_sim/streams/faults/clear", {})
    deadline = time.monotonic() + 15
    while (lag := time.time() - runner.data().timestamp.timestamp()) >= 0.3:
        assert time.monotonic() < deadline, "the delay never went away"


def test_malformed_frame_is_survived_on_the_same_connection(sim, streams):
    runner = _quotes(streams)
    _fault(sim, action="malformed", feed="v2/iex")
    runner.log("error during websocket communication")
    runner.data()
    assert connections(sim) == {"v2/iex": 1}
    assert not [m for k, m in list(runner.events.queue) if k == "log" and "restarting connection" in m]


def test_refuse_new_connections_then_accept(sim, streams):
    _fault(sim, action="refuse", feed="v2/iex", status=503, count=2)
    runner = streams()
    runner.client.subscribe_quotes(runner.handler, "AAPL")
    runner.start()
    runner.log("503")
    runner.data(timeout=20)  # the third attempt gets through
    assert sim.control("GET", "/_sim/streams")["faults"]["refuse"] == {}


def test_trade_stream_drop_reconnects_and_updates_resume(sim, streams, trading):
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest

    runner = streams("trading")
    runner.client.subscribe_trade_updates(runner.handler)
    runner.start()
    listening = lambda: sim.control("GET", "/_sim/streams")["listening"].get("paper/stream") == 1  # noqa: E731
    wait_for(listening, what="listening")
    _fault(sim, action="drop", feed="paper/stream")
    runner.log("trading stream websocket error")
    wait_for(listening, what="listening again")
    order = trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
    assert runner.data(lambda u: str(u.order.id) == str(order.id)).event == "new"


@pytest.mark.parametrize(
    "body",
    [{"action": "explode"}, {"action": "stall"}, {"action": "refuse", "status": 200}, {"action": "delay", "ms": "x"}],
)
def test_bad_fault_requests_are_422(sim, body):
    with pytest.raises(SimError, match="422"):
        _fault(sim, **body)
