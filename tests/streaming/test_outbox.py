"""A slow client's outbox: quotes conflate (latest per symbol wins), trades are all kept in order, and
past the bound the consumer is told to disconnect."""
import asyncio
import json

from streaming.outbox import Outbox
from streaming.protocol import by_symbol, encode


def quote(symbol, bid):
    return {"type": "quote", "symbol": symbol, "bid_price": bid}


def trade(symbol, price):
    return {"type": "trade", "symbol": symbol, "price": price}


def test_quotes_conflate_and_trades_are_never_dropped():
    box = Outbox(max_backlog=10)
    for i in range(5):
        assert box.push("AAPL", [encode(trade("AAPL", i))], encode(quote("AAPL", i)))
    assert box.push("MSFT", [], encode(quote("MSFT", 1)))
    out = [json.loads(m) for m in box.take()]
    assert out == [trade("AAPL", i) for i in range(5)] + [quote("AAPL", 4), quote("MSFT", 1)]
    assert box.conflated == 4 and len(box) == 0


def test_past_the_backlog_push_says_disconnect():
    box = Outbox(max_backlog=3)
    assert all(box.push("AAPL", [encode(trade("AAPL", i))], None) for i in range(3))
    assert box.push("AAPL", [], encode(quote("AAPL", 1)))  # quotes are bounded by the symbols, never the reason
    assert not box.push("AAPL", [encode(trade("AAPL", 3))], None)
    assert len(box.trades) == 4  # still all there: nothing is dropped silently


def test_wait_returns_as_soon_as_something_is_queued():
    async def body():
        box = Outbox(max_backlog=10)
        waiter = asyncio.create_task(box.wait())
        await asyncio.sleep(0)
        assert not waiter.done()
        box.push("SPY", [encode(trade("SPY", 1))], None)
        return await asyncio.wait_for(waiter, 5)

    assert asyncio.run(body()) == [encode(trade("SPY", 1))]


def test_a_fan_out_round_groups_by_symbol_keeps_every_trade_and_the_latest_quote():
    """The hub publishes each round as one group message with a part per symbol (streaming/hub.py), encoded
    once for every client, so a burst costs one channel call, not one per tick; nothing but superseded quotes
    is left out."""
    q, t = quote, trade
    batch = [q("AAPL", 1), t("AAPL", 10), q("MSFT", 5), q("AAPL", 2), t("AAPL", 11), t("MSFT", 50), q("AAPL", 3)]
    rounds = by_symbol(batch)
    assert rounds == {"AAPL": ([encode(t("AAPL", 10)), encode(t("AAPL", 11))], encode(q("AAPL", 3))),
                      "MSFT": ([encode(t("MSFT", 50))], encode(q("MSFT", 5)))}
    assert by_symbol([t("SPY", 1), t("SPY", 1)]) == {"SPY": ([encode(t("SPY", 1))] * 2, None)}
    assert by_symbol([]) == {}
