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
