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
