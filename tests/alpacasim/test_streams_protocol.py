"""The data-stream protocol frame by frame, with a plain WebSocket client: JSON and msgpack, and the
error codes alpaca-py only logs (400, 401, 403, 404, 405, 410, 412)."""

import json

import msgpack
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.alpacasim.conftest import PAPER_KEY, PAPER_SECRET
from tests.helpers.sim_streams import connections, wait_for

AUTH = {"action": "auth", "key": PAPER_KEY, "secret": PAPER_SECRET}


class Raw:
    def __init__(self, sim, path: str, msgpack_: bool = False) -> None:
        headers = {"Content-Type": "application/msgpack"} if msgpack_ else {}
        self.msgpack = msgpack_
        self.ws = connect(sim.base_url.replace("http", "ws") + path, additional_headers=headers, open_timeout=10, legacy=True)

    def send(self, obj) -> None:
        self.ws.send(msgpack.packb(obj) if self.msgpack else json.dumps(obj))

    def recv(self, timeout: float = 10.0) -> list:
        frame = self.ws.recv(timeout=timeout)
        if self.msgpack:
            assert isinstance(frame, bytes)
            return msgpack.unpackb(frame, timestamp=3)  # timestamps as datetime
        assert isinstance(frame, str)
        return json.loads(frame)

    def recv_until(self, predicate, timeout: float = 10.0) -> dict:
        while True:
            for msg in self.recv(timeout):
                if predicate(msg):
                    return msg

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def raw(sim):
    opened: list[Raw] = []

    def make(path="/v2/iex", msgpack_=False) -> Raw:
        r = Raw(sim, path, msgpack_)
        opened.append(r)
        return r

    yield make
    for r in opened:
        r.close()
    wait_for(lambda: not connections(sim), what="all stream connections closed")


def _authenticated(raw, path="/v2/iex", msgpack_=False) -> Raw:
    r = raw(path, msgpack_)
    assert r.recv() == [{"T": "success", "msg": "connected"}]
    r.send(AUTH)
    assert r.recv() == [{"T": "success", "msg": "authenticated"}]
    return r


def test_json_session_with_echo_and_rfc3339_ticks(sim, raw):
    sim.set_clock(now="2030-03-04T15:00:00Z")
    r = _authenticated(raw)
    r.send({"action": "subscribe", "quotes": ["AAPL"], "trades": ["AAPL"], "statuses": ["*"]})
    echo = r.recv()[0]
    assert echo == {
        "T": "subscription",
        "trades": ["AAPL"],
        "quotes": ["AAPL"],
        "bars": [],
        "updatedBars": [],
        "dailyBars": [],
        "statuses": ["*"],
        "lulds": [],
        "corrections": ["AAPL"],
        "cancelErrors": ["AAPL"],
    }
    quote = r.recv_until(lambda m: m["T"] == "q")
    assert quote["S"] == "AAPL" and quote["t"] == "2030-03-04T15:00:00.000000Z"
    assert quote["bp"] < quote["ap"]
    r.send({"action": "unsubscribe", "quotes": ["AAPL"], "trades": ["AAPL"]})
    echo = r.recv_until(lambda m: m["T"] == "subscription")
    assert echo["quotes"] == [] and echo["trades"] == [] and echo["statuses"] == ["*"]


def test_msgpack_ticks_carry_msgpack_timestamps(sim, raw):
    r = _authenticated(raw, msgpack_=True)
    r.send({"action": "subscribe", "trades": ["MSFT"]})
    trade = r.recv_until(lambda m: m["T"] == "t")
    assert trade["S"] == "MSFT" and trade["t"].tzinfo is not None and trade["p"] > 0 and trade["i"] >= 1


def test_wildcard_streams_the_configured_universe(sim, raw):
    r = _authenticated(raw)
    r.send({"action": "subscribe", "quotes": ["*"]})
    seen = set()
    while seen != {"AAPL", "MSFT", "SPY"}:
        seen |= {m["S"] for m in r.recv() if m["T"] == "q"}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"action": "subscribe", "quotes": ["AAPL"]}, 401),  # before auth
        ("not json", 400),
        ({"action": "dance"}, 400),
    ],
)
def test_errors_before_auth(sim, raw, frame, code):
    r = raw()
    r.recv()
    r.ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    assert r.recv()[0]["code"] == code
    r.send(AUTH)  # the connection is still usable
    assert r.recv() == [{"T": "success", "msg": "authenticated"}]


def test_already_authenticated_403_and_bad_subscriptions(sim, raw):
    r = _authenticated(raw)
    r.send(AUTH)
    assert r.recv() == [{"T": "error", "code": 403, "msg": "already authenticated"}]
    r.send({"action": "subscribe", "quotes": "AAPL"})
    assert r.recv()[0]["code"] == 400
    r.send({"action": "subscribe", "quotes": ["not a symbol"]})
    assert r.recv()[0]["code"] == 400


def test_symbol_limit_405_leaves_the_subscription(sim, raw):
    sim.control("POST", "/_sim/streams/config", {"symbol_limit": 2})
    r = _authenticated(raw)
    r.send({"action": "subscribe", "quotes": ["AAPL"], "trades": ["MSFT"]})
    assert r.recv_until(lambda m: m["T"] == "subscription")["trades"] == ["MSFT"]
    r.send({"action": "subscribe", "bars": ["SPY"]})
    assert r.recv_until(lambda m: m["T"] == "error") == {"T": "error", "code": 405, "msg": "symbol limit exceeded"}


def test_auth_failure_402_closes(sim, raw):
    r = raw()
    r.recv()
    r.send({"action": "auth", "key": PAPER_KEY, "secret": "nope"})
    assert r.recv() == [{"T": "error", "code": 402, "msg": "auth failed"}]
    with pytest.raises(ConnectionClosed):
        r.recv()


def test_connection_limit_406_closes_the_new_connection(sim, raw):
    _authenticated(raw)
    second = raw()
    second.recv()
    second.send(AUTH)
    assert second.recv() == [{"T": "error", "code": 406, "msg": "connection limit exceeded"}]
    with pytest.raises(ConnectionClosed):
        second.recv()


def test_auth_timeout_404(sim, raw):
    sim.control("POST", "/_sim/streams/config", {"auth_timeout_seconds": 0.3})
    r = raw()
    r.recv()
    assert r.recv() == [{"T": "error", "code": 404, "msg": "auth timeout"}]


def test_options_need_msgpack_412_and_have_no_stock_channels_410(sim, raw):
    r = raw("/v1beta1/opra")
    assert r.recv() == [{"T": "error", "code": 412, "msg": "option messages are only available in MsgPack format"}]
    o = _authenticated(raw, "/v1beta1/opra", msgpack_=True)
    o.send({"action": "subscribe", "bars": ["AAPL300315C00190000"]})
    assert o.recv()[0]["code"] == 410
    o.send({"action": "subscribe", "quotes": ["*"]})
    assert o.recv()[0]["code"] == 400
    o.send({"action": "subscribe", "quotes": ["AAPL300315C00190000"]})
    assert o.recv() == [{"T": "subscription", "trades": [], "quotes": ["AAPL300315C00190000"]}]


def test_unknown_feed_is_404(sim):
    with pytest.raises(Exception, match="404"):
        connect(sim.base_url.replace("http", "ws") + "/v2/nasdaq", open_timeout=5, legacy=True)
