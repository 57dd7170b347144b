"""A slow client's outbox: quotes conflate (latest per symbol wins), trades are all kept in order, and
past the bound the consumer is told to disconnect."""
import asyncio

from streaming.outbox import Outbox


def quote(symbol, bid):
    return {"type": "quote", "symbol": symbol, "bid_price": bid}


def trade(symbol, price):
    return {"type": "trade", "symbol": symbol, "price": price}


def test_quotes_conflate_and_trades_are_never_dropped():
    box = Outbox(max_backlog=10)
    for i in range(5):
        assert box.push(quote("AAPL", i))
        assert box.push(trade("AAPL", i))
    assert box.push(quote("MSFT", 1))
    out = box.take()
    assert out == [trade("AAPL", i) for i in range(5)] + [quote("AAPL", 4), quote("MSFT", 1)]
    assert box.conflated == 4 and len(box) == 0


def test_past_the_backlog_push_says_disconnect():
    box = Outbox(max_backlog=3)
    assert all(box.push(trade("AAPL", i)) for i in range(3))
    assert box.push(quote("AAPL", 1))  # quotes are bounded by the symbols, never the reason
    assert not box.push(trade("AAPL", 3))
    assert len(box.trades) == 4  # still all there: nothing is dropped silently


def test_wait_returns_as_soon_as_something_is_queued():
    async def body():
        box = Outbox(max_backlog=10)
        waiter = asyncio.create_task(box.wait())
        await asyncio.sleep(0)
        assert not waiter.done()
        box.push(trade("SPY", 1))
        return await asyncio.wait_for(waiter, 5)

    assert asyncio.run(body()) == [trade("SPY", 1)]


def test_a_fan_out_round_groups_by_symbol_keeps_every_trade_and_the_latest_quote():
    """The hub sends one group message per symbol per round (streaming/hub.py), so a burst costs one channel
    call per symbol, not one per tick; nothing but superseded quotes is left out."""
    from streaming.protocol import by_symbol

    def q(symbol, bid):
        return {"type": "quote", "symbol": symbol, "bid_price": bid}

    def t(symbol, price):
        return {"type": "trade", "symbol": symbol, "price": price}

    batch = [q("AAPL", 1), t("AAPL", 10), q("MSFT", 5), q("AAPL", 2), t("AAPL", 11), t("MSFT", 50), q("AAPL", 3)]
    rounds = by_symbol(batch)
    assert rounds == {"AAPL": [t("AAPL", 10), t("AAPL", 11), q("AAPL", 3)], "MSFT": [q("MSFT", 5), t("MSFT", 50)]}
    assert by_symbol([t("SPY", 1), t("SPY", 1)]) == {"SPY": [t("SPY", 1), t("SPY", 1)]}
    assert by_symbol([]) == {}
