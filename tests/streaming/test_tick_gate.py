"""The hub's per-symbol bound on tick-driven exit evaluations (streaming/ticks.py): the first quote goes at
once, quotes inside the interval conflate (latest wins) and the latest goes when the interval ends."""
import asyncio
import time

from streaming.ticks import TickGate


def test_first_tick_at_once_then_the_latest_per_interval_per_symbol():
    sent: list[tuple[float, dict]] = []

    async def body():
        gate = TickGate(send=lambda batch: sent.append((time.monotonic(), dict(batch))), interval_ms=200)
        runner = asyncio.create_task(gate.run())
        t0 = time.monotonic()
        gate.offer("X", {"bid": 1})
        gate.offer("X", {"bid": 2})
        gate.offer("X", {"bid": 3})
        gate.offer("Y", {"bid": 9})
        deadline = time.monotonic() + 30
        while sum(len(b) for _, b in sent) < 3:
            assert time.monotonic() < deadline, sent
            await asyncio.sleep(0.01)
        runner.cancel()
        return t0, gate

    t0, gate = asyncio.run(body())
    firsts = {s: (at, tick) for at, batch in reversed(sent) for s, tick in batch.items()}
    x_sends = [(at, batch["X"]) for at, batch in sent if "X" in batch]
    assert [tick for _, tick in x_sends] == [{"bid": 1}, {"bid": 3}]  # the middle one conflated
    assert x_sends[1][0] - t0 >= 0.2  # never two evaluations of a symbol within the interval
    assert firsts["Y"][1] == {"bid": 9} and firsts["Y"][0] - t0 < 0.19  # another symbol is not held back
    assert gate.sent == 3 and gate.conflated == 1


def test_zero_interval_sends_nothing():
    async def body():
        gate = TickGate(send=lambda batch: None, interval_ms=0)
        gate.offer("X", {"bid": 1})
        return gate

    gate = asyncio.run(body())
    assert gate.ready == {} and gate.pending == {}


def _run_until(gate: TickGate, done, offers) -> None:
    async def body():
        runner = asyncio.create_task(gate.run())
        for symbol, tick in offers:
            gate.offer(symbol, tick)
        deadline = time.monotonic() + 30
        while not done():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        runner.cancel()

    asyncio.run(body())


def test_a_settled_symbol_is_not_sent_again_until_the_bounds_are_read_after_it():
    sent: list[dict] = []
    marks = {"X": 1000.0}
    gate = TickGate(send=lambda batch: sent.append(dict(batch)), interval_ms=1, settled=lambda symbols: {s: marks[s] for s in symbols if s in marks})
    gate.bounds_read(999.0)
    _run_until(gate, lambda: gate.skipped_settled == 1 and gate.sent == 1, [("X", {"bid": 1}), ("Y", {"bid": 2})])
    assert sent == [{"Y": {"bid": 2}}] and gate.settled_at == {"X": 1000.0}
    # Later ticks of X are dropped at the gate, without asking again.
    asked: list[list[str]] = []
    gate.settled = lambda symbols: asked.append(symbols) or {}
    gate.offer("X", {"bid": 3})
    assert gate.skipped_settled == 2 and not gate.ready and not gate.pending and asked == []
    # A read of the bounds that began after the mark supersedes it: X is sent again (a position reopened).
    gate.bounds_read(1001.0)
    assert gate.settled_at == {}
    _run_until(gate, lambda: gate.sent == 2, [("X", {"bid": 4})])
    assert sent[-1] == {"X": {"bid": 4}} and asked == [["X"]]


def test_a_mark_older_than_the_last_bounds_read_is_ignored_and_an_unreadable_cache_sends_all():
    sent: list[dict] = []
    gate = TickGate(send=lambda batch: sent.append(dict(batch)), interval_ms=1, settled=lambda symbols: {"X": 1000.0})
    gate.bounds_read(2000.0)  # the database was read after the mark: X is in the bounds as it has it
    _run_until(gate, lambda: gate.sent == 1, [("X", {"bid": 1})])
    assert sent == [{"X": {"bid": 1}}] and gate.settled_at == {} and gate.skipped_settled == 0

    def down(symbols):
        raise ConnectionError("cache down")

    gate = TickGate(send=lambda batch: sent.append(dict(batch)), interval_ms=1, settled=down)
    _run_until(gate, lambda: gate.sent == 1, [("Z", {"bid": 1})])
    assert sent[-1] == {"Z": {"bid": 1}} and gate.skipped_settled == 0
