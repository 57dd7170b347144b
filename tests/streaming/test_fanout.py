"""The process side of the fan-out (streaming/fanout.py): one group membership per symbol per process, each
md.tick handed to that process's clients of the symbol, and one client's failure never starves the others."""
import asyncio

from channels.layers import InMemoryChannelLayer

from streaming.fanout import ProcessFanout
from streaming.protocol import group


def tick(symbol, trades=(), quote=None):
    return {"type": "md.tick", "s": symbol, "t": list(trades), "q": quote}


async def _until(predicate, timeout=10.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def test_one_membership_per_symbol_and_delivery_to_each_local_client():
    async def body():
        layer = InMemoryChannelLayer()
        fanout = ProcessFanout(layer)
        got: dict[str, list] = {"a": [], "b": [], "c": []}
        for name, symbols in (("a", ["AAPL", "MSFT"]), ("b", ["AAPL"]), ("c", ["MSFT"])):
            for s in symbols:
                await fanout.add(s, name, lambda sym, t, q, name=name: got[name].append((sym, t, q)))
        # the process joined each symbol's group once, with its own channel
        assert layer.groups[group("AAPL")].keys() == {fanout.channel} and layer.groups[group("MSFT")].keys() == {fanout.channel}
        await layer.group_send(group("AAPL"), tick("AAPL", ['{"type":"trade"}'], '{"type":"quote"}'))
        await layer.group_send(group("MSFT"), tick("MSFT", [], '{"q":2}'))
        await _until(lambda: len(got["a"]) == 2 and got["b"] and got["c"])
        assert got["a"] == [("AAPL", ['{"type":"trade"}'], '{"type":"quote"}'), ("MSFT", [], '{"q":2}')]
        assert got["b"] == [("AAPL", ['{"type":"trade"}'], '{"type":"quote"}')] and got["c"] == [("MSFT", [], '{"q":2}')]

        # the last client of a symbol leaves: the process leaves the group; the others keep theirs
        await fanout.discard("MSFT", "a")
        assert group("MSFT") in layer.groups
        await fanout.discard("MSFT", "c")
        await fanout.discard("MSFT", "c")  # twice: a no-op
        assert group("MSFT") not in layer.groups and "MSFT" not in fanout.members
        assert fanout.members["AAPL"].keys() == {"a", "b"}
        fanout._task.cancel()

    asyncio.run(body())


def test_a_failing_client_does_not_starve_the_others(caplog):
    async def body():
        layer = InMemoryChannelLayer()
        fanout = ProcessFanout(layer)
        got = []

        def broken(symbol, trades, quote):
            raise RuntimeError("boom")

        await fanout.add("AAPL", "broken", broken)
        await fanout.add("AAPL", "ok", lambda s, t, q: got.append(q))
        for i in range(3):
            await layer.group_send(group("AAPL"), tick("AAPL", quote=str(i)))
        await _until(lambda: len(got) == 3)
        assert got == ["0", "1", "2"]
        fanout._task.cancel()

    asyncio.run(body())
    assert caplog.text.count("ws fan-out to broken failed") == 3
