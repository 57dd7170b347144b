"""/ws/market-data end to end: uvicorn + the hub (embedded defaults: inside the ASGI process, or the
hub process with Redis) against alpacasim's streams, over real WebSockets."""
from __future__ import annotations

import asyncio
import json
import re
import socket
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.helpers.sim_streams import connections, wait_for
from tests.streaming.conftest import token
from tests.streaming.wsclient import Client, run

pytestmark = pytest.mark.e2e

OPTION = "AAPL260116C00190000"
FEEDS = {"v2/iex": 1, "v1beta1/indicative": 1}


@pytest.fixture(autouse=True)
def fast_ticks(sim_server):
    sim_server.control("POST", "/_sim/streams/config", {"tick_rate": 10})
    yield
    sim_server.control("POST", "/_sim/streams/faults/clear", {})
    sim_server.control("POST", "/_sim/streams/config", {"tick_rate": 1})


async def _stock_feed(client: Client, until=lambda feed: True, what: str = "the stock feed's status", timeout: float = 20) -> dict:
    """The stock feed as the hub last published it (every second), once ``until`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        await client.send({"type": "ping"})
        feed = (await client.next("pong"))["stream"]["feeds"].get("stock:iex", {})
        if until(feed):
            return feed
        assert time.monotonic() < deadline, f"{what} not reached: {feed}"
        await asyncio.sleep(0.3)


def test_protocol_messages_field_by_field(ws_stack):
    async def body():
        c = await Client.open(ws_stack.ws_port, token=token())
        welcome = await c.next("welcome")
        assert set(welcome) == {"type", "message", "max_symbols", "timestamp"} and welcome["max_symbols"] == 5

        update = await c.subscribe(["aapl", OPTION, "NOT A SYMBOL"])
        assert update == {
            "type": "subscription_update",
            "added_symbols": ["AAPL", OPTION],
            "rejected_symbols": [{"symbol": "NOT A SYMBOL", "reason": "invalid_symbol"}],
            "total_subscribed": 2,
        }
        quote = await c.next("quote", lambda m: m["symbol"] == "AAPL")
        assert set(quote) == {"type", "symbol", "data_type", "bid_price", "ask_price", "bid_size", "ask_size", "timestamp"}
        assert quote["data_type"] == "stock" and 0 < quote["bid_price"] < quote["ask_price"] and quote["timestamp"].endswith("Z")
        trade = await c.next("trade", lambda m: m["symbol"] == "AAPL")
        assert set(trade) == {"type", "symbol", "data_type", "price", "size", "timestamp"} and trade["price"] > 0
        option = await c.next("quote", lambda m: m["symbol"] == OPTION)
        assert option["data_type"] == "option"

        feed = await _stock_feed(c, lambda f: f.get("connected") is True, "the stock feed connected")
        assert set(feed) >= {"connected", "subscribed_symbols", "last_message_age_ms", "reconnects_last_hour"}

        await c.send({"type": "unsubscribe", "symbols": ["AAPL", "MSFT"]})
        ack = await c.next("unsubscribe_ack")
        assert ack == {"type": "unsubscribe_ack", "symbols": ["AAPL"], "total_subscribed": 1}
        # After the ack, nothing more of AAPL: two option quotes pass and no AAPL message among what came.
        seen = []
        for _ in range(2):
            await c.next("quote", lambda m: seen.append(m) or m["symbol"] == OPTION)
        assert not [m for m in seen if m["symbol"] == "AAPL"]
        # It really unsubscribes upstream, after the grace period (1 s here).
        await _stock_feed(c, lambda f: f.get("subscribed_symbols") == 0, "AAPL unsubscribed upstream")

        await c.send({"type": "nope"})
        assert (await c.next("error"))["code"] == "unknown_type"
        await c.close()

    run(body())


def test_auth_refusals_close_with_4xxx(ws_stack):
    async def body():
        c = await Client.open(ws_stack.ws_port)
        assert await c.closed() == (4001, "authentication required: ?token= or Authorization: Bearer")
        c = await Client.open(ws_stack.ws_port, token="not-a-jwt")
        assert await c.closed() == (4001, "invalid or expired token")
        c = await Client.open(ws_stack.ws_port, token=token(permissions=("trading",)))
        assert await c.closed() == (4003, "the token lacks the market_data permission")
        c = await Client.open(ws_stack.ws_port, header_token=token("header-user"))  # the Authorization header works too
        assert (await c.next("welcome"))["type"] == "welcome"
        await c.close()
        secret = token("logged-user")
        c = await Client.open(ws_stack.ws_port, token=secret)
        await c.next("welcome")
        await c.close()
        # The server logs the connection's path, never the token in its query string.
        await asyncio.to_thread(ws_stack.wait_for, lambda: "WebSocket /ws/market-data?token=****" in ws_stack.output("ws"), "the ws log line")
        assert secret not in ws_stack.output("ws") and secret not in ws_stack.app_log()

    run(body())


def test_limits_symbols_per_connection_and_connections_per_user(ws_stack):
    async def body():
        c = await Client.open(ws_stack.ws_port, token=token("limits"))
        update = await c.subscribe(["A", "B", "C", "D", "E", "F", "G"])
        assert update["added_symbols"] == ["A", "B", "C", "D", "E"] and update["total_subscribed"] == 5
        assert update["rejected_symbols"] == [{"symbol": s, "reason": "max_symbols_per_connection"} for s in ("F", "G")]
        others = [await Client.open(ws_stack.ws_port, token=token("limits")) for _ in range(2)]
        for o in others:
            await o.next("welcome")
        fourth = await Client.open(ws_stack.ws_port, token=token("limits"))
        assert await fourth.closed() == (4008, "too many connections for this user")
        for o in [c, *others]:
            await o.close()

    run(body())


def test_fan_out_from_one_upstream_connection_per_feed(ws_stack, sim_server):
    async def body():
        clients = [await Client.open(ws_stack.ws_port, token=token(f"fan-{i}")) for i in range(6)]
        for c in clients:
            await c.subscribe(["MSFT", OPTION])
        for c in clients:
            await c.next("quote", lambda m: m["symbol"] == "MSFT")
            await c.next("quote", lambda m: m["symbol"] == OPTION)
        assert connections(sim_server) == FEEDS
        for c in clients:
            await c.close()

    run(body())


def test_batched_framing_carries_the_same_messages_as_json_arrays(ws_stack):
    """``?batch=1``: every frame is a JSON array of the protocol's messages (control answers too), and a
    batched client gets exactly the trades a per-message client of the same symbol gets, in order."""
    async def body():
        batched = await Client.open(ws_stack.ws_port, token=token("batched"), batch=True)
        plain = await Client.open(ws_stack.ws_port, token=token("plain"))
        welcome = await batched.next("welcome")
        assert set(welcome) == {"type", "message", "max_symbols", "timestamp"} and batched.frames[0] == 1
        await plain.next("welcome")
        assert await batched.subscribe(["MSFT", OPTION]) == {
            "type": "subscription_update", "added_symbols": ["MSFT", OPTION], "rejected_symbols": [], "total_subscribed": 2}
        await plain.subscribe(["MSFT"])
        quote = await batched.next("quote", lambda m: m["symbol"] == "MSFT")
        assert set(quote) == {"type", "symbol", "data_type", "bid_price", "ask_price", "bid_size", "ask_size", "timestamp"}
        assert (await batched.next("quote", lambda m: m["symbol"] == OPTION))["data_type"] == "option"

        async def trades(c: Client, n: int) -> list[tuple]:
            out: list[tuple] = []
            while len(out) < n:
                m = await c.next("trade", lambda m: m["symbol"] == "MSFT")
                assert set(m) == {"type", "symbol", "data_type", "price", "size", "timestamp"}
                out.append((m["timestamp"], m["price"], m["size"]))
            return out

        got_batched, got_plain = await asyncio.gather(trades(batched, 30), trades(plain, 30))
        start, end = max(got_batched[0][0], got_plain[0][0]), min(got_batched[-1][0], got_plain[-1][0])
        both = [t for t in got_batched if start <= t[0] <= end]
        assert len(both) >= 10 and both == [t for t in got_plain if start <= t[0] <= end]
        await batched.send({"type": "ping"})
        assert (await batched.next("pong"))["stream"]["status"]
        await batched.send({"type": "nope"})
        assert (await batched.next("error"))["code"] == "unknown_type"
        await batched.close()
        await plain.close()

    run(body())


@pytest.mark.parametrize("fault", [
    {"action": "drop"},
    {"action": "stall", "seconds": 5},
    {"action": "malformed"},
    {"action": "refuse", "status": 503, "count": 2},
])
def test_hub_recovers_from_stream_faults_without_clients_reconnecting(ws_stack, sim_server, fault):
    async def body():
        c = await Client.open(ws_stack.ws_port, token=token("faults"))
        await c.subscribe(["SPY"])
        await c.next("quote", lambda m: m["symbol"] == "SPY")
        before = await _stock_feed(c)
        sim_server.control("POST", "/_sim/streams/faults", {**fault, "feed": "v2/iex"})
        if fault["action"] == "refuse":  # refusals bite on the next handshake: drop the live one
            sim_server.control("POST", "/_sim/streams/faults", {"action": "drop", "feed": "v2/iex"})
        faulted_at = time.time()
        # The same client connection keeps getting SPY ticks produced after the fault.
        await c.next("quote", lambda m: m["symbol"] == "SPY" and _epoch(m["timestamp"]) > faulted_at + 0.5, timeout=40)
        if fault["action"] != "malformed":  # the gap is counted and shown
            await _stock_feed(c, lambda f: f["connected"] and f["reconnects_last_hour"] > before["reconnects_last_hour"]
                              and f["gaps"] > before["gaps"] and f["last_gap_seconds"] is not None, "the gap in the status")
        await asyncio.to_thread(wait_for, lambda: connections(sim_server) == FEEDS, 15.0, "one upstream connection per feed again")
        await c.close()

    run(body())


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_rest_quote_of_a_streamed_symbol_comes_from_the_cache(ws_stack):
    async def body():
        c = await Client.open(ws_stack.ws_port, token=token("rest"))
        await c.subscribe(["NVDA"])
        await c.next("quote", lambda m: m["symbol"] == "NVDA")
        t = token("rest-api")
        deadline = time.monotonic() + 20
        while True:  # the hub flushes the cache every 50 ms
            status, quote = await asyncio.to_thread(ws_stack.get, "/api/v1/stocks/NVDA/quote", token=t)
            assert status == 200, quote
            if quote["source"] == "stream" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert quote["source"] == "stream" and 0 <= quote["age_ms"] <= 5000 and float(quote["bid"]) > 0
        status, other = await asyncio.to_thread(ws_stack.get, "/api/v1/stocks/ORCL/quote", token=t)
        assert status == 200 and other["source"] == "rest"
        status, batch, _ = await asyncio.to_thread(ws_stack.request, "POST", "/api/v1/stocks/quotes/batch",
                                                   body={"symbols": ["NVDA", "ORCL"]}, token=t)
        assert status == 200
        assert {r["symbol"]: r["quote"]["source"] for r in batch["results"]} == {"NVDA": "stream", "ORCL": "rest"}
        await c.close()

    run(body())


SLOW_SYMBOLS = ["AMD", "INTC", "QCOM", "AVGO", "TXN"]


def test_slow_consumer_gets_conflated_quotes_then_is_closed_past_the_backlog(ws_stack, sim_server):
    """A client that stops reading (a 4 KB receive buffer, a one-frame queue and no compression, so the
    server's writes back up): its quotes conflate (latest per symbol) while its trades queue, and once more
    than max_backlog (50) trades are queued the server closes it with 4009 and a reason. A client reading
    the same symbols meanwhile keeps its connection."""
    sim_server.control("POST", "/_sim/streams/config", {"tick_rates": {s: 200 for s in SLOW_SYMBOLS}})

    async def body():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", ws_stack.ws_port))
        sock.setblocking(False)
        slow = await Client.open(ws_stack.ws_port, token=token("slow"), sock=sock, max_queue=1, compression=None)
        fast = await Client.open(ws_stack.ws_port, token=token("fast"))
        await slow.next("welcome")
        await slow.subscribe(SLOW_SYMBOLS)
        await fast.subscribe(SLOW_SYMBOLS)
        # Only the fast client reads, until the server has given up on the slow one.
        deadline = time.monotonic() + 60
        while "too slow" not in ws_stack.output("ws") + ws_stack.app_log():
            assert time.monotonic() < deadline, f"the slow client was not closed within 60 s: {ws_stack.diagnostics()}"
            for _ in range(100):
                await fast.next("trade")
        counts = {"quote": 0, "trade": 0}
        rcvd = None
        try:
            async with asyncio.timeout(30):
                while True:
                    kind = json.loads(await slow.ws.recv()).get("type")
                    if kind in counts:
                        counts[kind] += 1
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
        assert rcvd is not None and (rcvd.code, rcvd.reason) == (4009, "slow consumer: more than 50 messages queued"), \
            (rcvd, counts, ws_stack.output("ws")[-2500:])
        # Every trade sent reached it before the close; its quotes were conflated once it fell behind (the
        # server counts them: they never reach a client that reads nothing).
        assert counts["trade"] > 50, counts
        line = re.search(r"too slow: (\d+) trades queued, (\d+) quotes conflated", ws_stack.output("ws") + ws_stack.app_log())
        # past the backlog of 50: a fan-out round delivers a symbol's trades together, so one round may pass it by more than one
        assert line and int(line.group(1)) > 50 and int(line.group(2)) > 0, line
        await fast.send({"type": "ping"})
        assert (await fast.next("pong"))["type"] == "pong"
        await fast.close()

    try:
        run(body())
    finally:
        sim_server.control("POST", "/_sim/streams/config", {"tick_rates": {s: None for s in SLOW_SYMBOLS}})
