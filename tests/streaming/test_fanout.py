"""The process side of the fan-out (streaming/fanout.py): a process with clients joins the round group once,
each symbol's part of an md.round goes to that process's clients of the symbol, and one client's failure
never starves the others."""
import asyncio

from channels.layers import InMemoryChannelLayer

from streaming.fanout import ProcessFanout
from streaming.protocol import ROUND_GROUP


def round_of(*parts):
    return {"type": "md.round", "r": [list(p) for p in parts]}


async def _until(predicate, timeout=10.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def test_one_membership_per_process_and_each_symbol_to_its_local_clients():
    async def body():
        layer = InMemoryChannelLayer()
        fanout = ProcessFanout(layer)
        got: dict[str, list] = {"a": [], "b": [], "c": []}
        for name, symbols in (("a", ["AAPL", "MSFT"]), ("b", ["AAPL"]), ("c", ["MSFT"])):
            for s in symbols:
                await fanout.add(s, name, lambda sym, t, q, name=name: got[name].append((sym, t, q)))
        assert layer.groups[ROUND_GROUP].keys() == {fanout.channel}  # the process joined once, with its own channel
        await layer.group_send(ROUND_GROUP, round_of(("AAPL", ['{"type":"trade"}'], '{"type":"quote"}'), ("MSFT", [], '{"q":2}'),
                                                     ("TSLA", ['{"t":1}'], None)))
        await _until(lambda: len(got["a"]) == 2 and got["b"] and got["c"])
        assert got["a"] == [("AAPL", ['{"type":"trade"}'], '{"type":"quote"}'), ("MSFT", [], '{"q":2}')]
        assert got["b"] == [("AAPL", ['{"type":"trade"}'], '{"type":"quote"}')] and got["c"] == [("MSFT", [], '{"q":2}')]

        # a symbol's last client leaves: the others keep theirs; the last client of all: the process leaves
        await fanout.discard("MSFT", "a")
        await fanout.discard("MSFT", "c")
        await fanout.discard("MSFT", "c")  # twice: a no-op
        assert "MSFT" not in fanout.members and fanout.members["AAPL"].keys() == {"a", "b"}
        assert ROUND_GROUP in layer.groups
        await fanout.discard("AAPL", "a")
        await fanout.discard("AAPL", "b")
        assert fanout.members == {} and ROUND_GROUP not in layer.groups
        await fanout.add("AAPL", "d", lambda *a: None)  # and joins again with the next client
        assert layer.groups[ROUND_GROUP].keys() == {fanout.channel}
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
            await layer.group_send(ROUND_GROUP, round_of(("AAPL", [], str(i))))
        await _until(lambda: len(got) == 3)
        assert got == ["0", "1", "2"]
        fanout._task.cancel()

    asyncio.run(body())
    assert caplog.text.count("ws fan-out to broken failed") == 3
