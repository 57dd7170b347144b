"""Streaming market data through the gateway: tick → client fan-out, and REST quotes served from the stream.

    python -m bench.hub_fanout [--clients 200] [--symbols 50] [--per-client 10] [--rate 500] [--duration 10]
                               [--framing both|message|batch] [--no-rest | --rest-only] [--smoke]

One stack (bench/gateway.py: alpacasim, gunicorn, the ws process and, with REDIS_URL, the hub process; on
embedded defaults the hub runs inside the ws process, docs/streaming.md). Three figures from one run:

1. **Tick to client.** ``--clients`` WebSocket clients on /ws/market-data, each subscribed to ``--per-client``
   of ``--symbols`` symbols (client i takes symbols i*k .. i*k+k-1 modulo the count, so every symbol has
   clients), alpacasim at ``--rate`` ticks/s in all (``/_sim/streams/config`` tick_rate = rate / symbols per
   symbol; each tick is a quote and a trade). The clients run in ``--procs`` processes. It runs twice in the
   same stack (``--framing both``): one JSON object per frame (the old protocol: the headline figures,
   ``headline_framing``), then ``?batch=1`` (a JSON array per frame: the ``batched_*`` figures). Over the measured
   window: p50/p99 of (client receive time − the tick's exchange timestamp) for every quote and trade stamped in it,
   messages/s delivered (received during the window), CPU seconds of the ASGI (ws) and hub processes and of the
   bench's own clients (/proc), the CPU per message delivered (the cost figure that holds on a loaded host), and trades lost: a
   reference client on alpacasim itself (another account's keys) counts the trades sent per symbol with an
   exchange timestamp inside the window; every client must have received as many for each of its symbols.
2. **REST quotes from the stream.** ``wrk`` (as bench/quote_throughput.py) on GET /api/v1/stocks/AAPL/quote
   (AAPL is a streamed symbol, kept subscribed by ``market_data.default_symbols``; the first answer must say
   ``source: stream``), on /api/v1/live through the same gunicorn (the bare-framework ceiling) and on
   alpacasim's own quote route. Ratio quote/live target ≥ 0.7; quote/alpacasim is info.
3. **Upstream REST calls per 1,000 streamed quotes**, from alpacasim's request counters (``/_sim/state``
   ``requests``) before and after the gateway quote run. Target 0.

``--smoke``: 20 clients, 3 s window, 2 s per wrk target. ``--rest-only``: parts 2 and 3 alone (no WebSocket
clients), with gunicorn's CPU per request (master and workers, /proc) for /live and the quote. Prints one JSON
object (the last line of stdout).
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing as mp
import os
import re
import shutil
import socket
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import cpu_seconds, gateway_stack, pct  # noqa: E402
from bench.wrk import run_wrk  # noqa: E402
from tests.helpers.sim import free_port  # noqa: E402

TARGET_P99_MS = 50
TARGET_RATIO = 0.7
QUOTE_SYMBOL = "AAPL"


def symbols(n: int) -> list[str]:
    return [QUOTE_SYMBOL, *(f"S{i:03d}" for i in range(1, n))]


@functools.lru_cache(maxsize=8192)  # a tick's timestamp reaches ~40 clients: parse it once per process
def _epoch(text: bytes) -> float:
    return datetime.fromisoformat(text.decode().replace("Z", "+00:00")).timestamp()


# The three fields the bench reads from a quote or trade, straight from the frame's bytes: the server encodes
# them compactly in this order (streaming/protocol.py), so a json.loads per frame (most of a client's CPU per
# message, once the WebSocket layer is aiohttp's C reader) is only needed for anything else, which falls back.
DATA_MESSAGE = re.compile(rb'\{"type":"(quote|trade)","symbol":"([^"\\]*)",[^{}\[\]]*"timestamp":"([^"\\]*)"\}')


def _fields(raw: bytes, batch: bool) -> list[tuple[bytes, bytes, bytes]]:
    """(type, symbol, timestamp) of each quote and trade in a frame."""
    if not batch:
        match = DATA_MESSAGE.fullmatch(raw)
        if match is not None:
            return [match.groups()]
    parsed = json.loads(raw)
    return [(m["type"].encode(), m["symbol"].encode(), m["timestamp"].encode())
            for m in (parsed if batch else (parsed,)) if m.get("type") in ("quote", "trade")]


# --- client processes --------------------------------------------------------------------------------------
async def _client(session, url: str, wanted: list[str], window, stop, ready: list, out: dict, last_msg) -> None:
    """One WebSocket client on aiohttp (its C frame reader; websockets' asyncio client cost about twice the CPU
    per frame). What it measures, per quote and trade: receive time − the exchange timestamp, trades counted."""
    import aiohttp

    batch = "batch=1" in url
    trades: Counter = Counter()
    latencies: list[float] = []
    seen: set[bytes] = set()
    received = 0
    timeline = out["timeline"]
    text = aiohttp.WSMsgType.TEXT
    try:
        async with session.ws_connect(url, max_msg_size=0, decode_text=False) as ws:
            await ws.receive()  # welcome
            await ws.send_str(json.dumps({"type": "subscribe", "symbols": wanted}))
            # Closed at the stop by a watcher: a timeout per receive (a task or timer each) would cost the
            # clients more CPU than the server spends per message, on the host they share.
            closer = asyncio.create_task(_close_at(stop, ws))
            while True:
                msg = await ws.receive()
                if msg.type is not text:
                    break
                now = time.time()
                messages = _fields(msg.data, batch)
                if not messages:
                    continue
                n = len(messages)
                received += n
                out["last_at"] = now
                timeline[int(now)] += n
                if "sample" not in out:
                    out["sample"] = json.loads(msg.data)
                if len(seen) < len(wanted):
                    seen.update(symbol for _, symbol, _ in messages)
                    if len(seen) == len(wanted):
                        ready.append(1)
                start, end = window[0], window[1]
                if start:
                    in_window = start <= now <= end
                    if in_window:
                        out["delivered_in_window"] += n
                        out["frames_in_window"] += 1
                    for kind, symbol, stamp in messages:
                        t = _epoch(stamp)
                        if start <= t <= end:
                            latencies.append((now - t) * 1000)
                            if kind == b"trade":
                                trades[symbol] += 1
                # Published from here, not only by the process's reporter: a client with frames buffered reads
                # them without yielding, so the reporter could go quiet for seconds while messages still arrive,
                # and the drain would end early (trades still on their way counted as lost).
                if now - out["published_at"] > 0.2:
                    out["published_at"] = now
                    if now > last_msg.value:
                        last_msg.value = now
            if ws.exception() is not None:
                raise ws.exception()
        closer.cancel()
    except Exception as exc:  # noqa: BLE001 - a closed connection is a figure, not a crash
        out["errors"].append(f"{type(exc).__name__}: {exc}"[:200])
    out["received"] += received
    out["trades"].append((wanted, {s.decode(): n for s, n in trades.items()}))
    out["latencies"].extend(latencies)


async def _close_at(stop, ws) -> None:
    await stop.wait()
    await ws.close()


def client_proc(url: str, subsets: list[list[str]], window, stop, ready_count, last_msg, results) -> None:
    import aiohttp

    async def run() -> dict:
        out = {"trades": [], "latencies": [], "errors": [], "received": 0, "timeline": Counter(), "last_at": 0.0,
               "delivered_in_window": 0, "frames_in_window": 0,
               "published_at": 0.0}
        ready: list = []

        stopped = asyncio.Event()  # set from the mp.Event, polled without blocking the loop

        async def report_ready() -> None:
            last = 0
            while not stop.is_set():
                if len(ready) != last:
                    with ready_count.get_lock():
                        ready_count.value += len(ready) - last
                    last = len(ready)
                if out["last_at"] > last_msg.value:
                    last_msg.value = out["last_at"]
                await asyncio.sleep(0.2)
            stopped.set()

        # limit=0: one pooled connection per WebSocket, and more than aiohttp's default 100 clients per process
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            tasks = [asyncio.create_task(_client(session, url, s, window, stopped, ready, out, last_msg)) for s in subsets]
            reporter = asyncio.create_task(report_ready())
            await asyncio.gather(*tasks)
            await reporter
        return out

    results.put(asyncio.run(run()))


# --- the reference client on alpacasim ---------------------------------------------------------------------
def reference_proc(url: str, key: str, secret: str, syms: list[str], window, stop, results) -> None:
    import msgpack
    import websockets

    async def run() -> dict:
        sent: Counter = Counter()
        async with websockets.connect(url, additional_headers={"Content-Type": "application/msgpack"}, max_size=None) as ws:
            await ws.recv()
            await ws.send(msgpack.packb({"action": "auth", "key": key, "secret": secret}))
            await ws.recv()
            await ws.send(msgpack.packb({"action": "subscribe", "trades": syms}))
            while not stop.is_set():
                try:
                    frame = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                start, end = window[0], window[1]
                for m in msgpack.unpackb(frame, timestamp=1):
                    if m.get("T") == "t" and start and start <= m["t"] <= end:
                        sent[m["S"]] += 1
        return dict(sent)

    results.put(asyncio.run(run()))


def _wait(what: str, predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def fanout(gw, ws_port: int, args, syms: list[str], framing: str = "message") -> dict:
    ws_proc, hub_proc = gw.companions["ws"], gw.companions.get("hub")
    _wait("the ws server", lambda: _port_open(ws_port), 90)
    gw.sim.control("POST", "/_sim/streams/config", {"tick_rate": args.rate / len(syms)})
    ctx = mp.get_context("spawn")
    window = ctx.Array("d", [0.0, 0.0], lock=False)
    stop, ready, last_msg = ctx.Event(), ctx.Value("i", 0), ctx.Value("d", 0.0)
    results, ref_results = ctx.Queue(), ctx.Queue()
    ref = gw.config["accounts"]["account_002"]
    reference = ctx.Process(target=reference_proc, args=(gw.sim.base_url.replace("http", "ws") + "/v2/iex", ref["api_key"],
                                                         ref["secret_key"], syms, window, stop, ref_results))
    reference.start()
    k = args.per_client
    subsets = [[syms[(i * k + j) % len(syms)] for j in range(k)] for i in range(args.clients)]
    url = f"ws://127.0.0.1:{ws_port}/ws/market-data" + ("?batch=1" if framing == "batch" else "")
    procs = [ctx.Process(target=client_proc, args=(url, subsets[p::args.procs], window, stop, ready, last_msg,
                                                            results))
             for p in range(args.procs)]
    for p in procs:
        p.start()
    try:
        try:
            _wait("every client's first tick of each of its symbols", lambda: ready.value >= args.clients, args.ready)
        except RuntimeError:  # measure with those that are streaming; the figure says how many
            print(f"hub_fanout: {ready.value} of {args.clients} clients streaming after {args.ready:g} s", file=sys.stderr)
        clients_ready = ready.value
        time.sleep(1.0)  # warm: the hub's subscription settles
        cpu0 = {"ws": cpu_seconds(ws_proc.pid), "hub": cpu_seconds(hub_proc.pid) if hub_proc else None,
                "clients": sum(cpu_seconds(p.pid) for p in procs)}
        streams0 = gw.sim.control("GET", "/_sim/streams")
        start = time.time()
        window[0], window[1] = start, start + args.duration
        time.sleep(args.duration)
        cpu1 = {"ws": cpu_seconds(ws_proc.pid), "hub": cpu_seconds(hub_proc.pid) if hub_proc else None,
                "clients": sum(cpu_seconds(p.pid) for p in procs)}
        streams1 = gw.sim.control("GET", "/_sim/streams")
        # No more ticks; then drain: what was stamped inside the window may still be queued on its way (a
        # loaded host). A trade is lost only if it never arrives, not if it arrives late (the latency says that).
        gw.sim.control("POST", "/_sim/streams/config", {"tick_rate": 0})
        drain_start = time.time()
        try:
            _wait("the clients to drain", lambda: time.time() - last_msg.value > args.grace, args.drain)
            drained = True
        except RuntimeError:  # still arriving at the bound: what has not arrived counts as lost
            drained = False
        drained_s = round(time.time() - drain_start, 1)
    finally:
        stop.set()
    outs = [results.get(timeout=120) for _ in procs]
    sent = ref_results.get(timeout=60)
    for p in [*procs, reference]:
        p.join(30)
    latencies = [x for o in outs for x in o["latencies"]]
    lost = dup = 0
    lost_by_symbol: Counter = Counter()
    for o in outs:
        for wanted, got in o["trades"]:
            for s in wanted:
                diff = sent.get(s, 0) - got.get(s, 0)
                if diff > 0:
                    lost += diff
                    lost_by_symbol[s] += diff
                elif diff < 0:
                    dup -= diff
    errors = [e for o in outs for e in o["errors"]]
    hub_cpu = round(cpu1["hub"] - cpu0["hub"], 2) if hub_proc else None
    return {
        "framing": framing, "clients": args.clients, "clients_streaming_at_start": clients_ready, "symbols": len(syms), "symbols_per_client": k, "client_processes": args.procs,
        "offered_ticks_per_s": args.rate, "tick_rate_per_symbol": args.rate / len(syms),
        "window_s": args.duration, "drain_s": drained_s, "drained": drained,
        "upstream_ticks_sent_in_window": streams1.get("ticks_sent", 0) - streams0.get("ticks_sent", 0),
        "sim_stream_connections": streams1.get("connections"),
        "messages_received_in_all": sum(o["received"] for o in outs),
        "timeline": {k - int(start): v for o in outs for k, v in sorted(o["timeline"].items())},
        "message_sample": next((o["sample"] for o in outs if "sample" in o), None),
        "messages_stamped_in_window": len(latencies),
        # by receive time: what the clients got per second during the window
        "messages_per_s": round(sum(o["delivered_in_window"] for o in outs) / args.duration, 1),
        "frames_per_s": round(sum(o["frames_in_window"] for o in outs) / args.duration, 1),
        "latency_ms": {"p50": _r(pct(latencies, 50)), "p95": _r(pct(latencies, 95)), "p99": _r(pct(latencies, 99)),
                       "max": _r(max(latencies) if latencies else None)},
        "trades_sent_in_window": sum(sent.values()),
        "trades_expected": sum(sent.get(s, 0) for o in outs for wanted, _ in o["trades"] for s in wanted),
        "trades_lost": lost,
        "trades_lost_by_symbol": dict(lost_by_symbol.most_common(5)),
        "trades_duplicated": dup,
        # a loss spread over every client is a late tail; one concentrated on some clients is a stuck connection
        "clients_missing_trades": sum(1 for o in outs for wanted, got in o["trades"] if any(sent.get(s, 0) > got.get(s, 0) for s in wanted)),
        "clients_with_no_trade_in_window": sum(1 for o in outs for _, got in o["trades"] if not got),
        "client_errors": len(errors), "client_error_samples": errors[:3],
        # CPU per message delivered in the window: the cost figure that holds on a loaded, shared host
        "asgi_cpu_us_per_message": round((cpu1["ws"] - cpu0["ws"]) * 1e6 / max(1, sum(o["delivered_in_window"] for o in outs)), 1),
        "clients_cpu_us_per_message": round((cpu1["clients"] - cpu0["clients"]) * 1e6
                                            / max(1, sum(o["delivered_in_window"] for o in outs)), 1),
        "cpu_s": {"asgi": round(cpu1["ws"] - cpu0["ws"], 2), "hub": hub_cpu,
                  "bench_clients": round(cpu1["clients"] - cpu0["clients"], 2),
                  "hub_process": "own process (run_hub)" if hub_proc else "inside the ASGI process (embedded defaults)"},
    }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def _per_request_ms(cpu_s: float, requests: int | None) -> float | None:
    return round(cpu_s * 1000 / requests, 3) if requests else None


def rest(gw, args, syms: list[str]) -> dict:
    quote_url = f"{gw.base_url}/api/v1/stocks/{QUOTE_SYMBOL}/quote"
    live_url = f"{gw.base_url}/api/v1/live"
    sim_url = f"{gw.sim.data_url}/v2/stocks/quotes/latest?symbols={QUOTE_SYMBOL}"
    acct = gw.config["accounts"]["account_001"]
    sim_headers = {"APCA-API-KEY-ID": acct["api_key"], "APCA-API-SECRET-KEY": acct["secret_key"]}
    first: dict = {}
    gw.sim.control("POST", "/_sim/streams/config", {"tick_rate": args.rate / len(syms)})  # AAPL streams again

    def streamed() -> bool:
        first.update(requests.get(quote_url, timeout=10).json())
        return first.get("source") == "stream"

    _wait(f"GET /stocks/{QUOTE_SYMBOL}/quote answering source: stream", streamed, 60)
    for _ in range(20):  # warm every gunicorn connection path
        assert requests.get(quote_url, timeout=10).status_code == 200
        assert requests.get(live_url, timeout=10).status_code == 200
        assert requests.get(sim_url, headers=sim_headers, timeout=10).status_code == 200
    common = {"duration": args.wrk_duration, "connections": args.connections, "threads": 2}
    sim = run_wrk(sim_url, headers=sim_headers, **common)
    cpu0 = cpu_seconds(gw.web.pid)
    live = run_wrk(live_url, headers={}, **common)
    cpu1 = cpu_seconds(gw.web.pid)
    before = gw.sim.state()["requests"]
    quote = run_wrk(quote_url, headers={}, **common)
    after = gw.sim.state()["requests"]
    cpu2 = cpu_seconds(gw.web.pid)
    upstream = sum(after.values()) - sum(before.values())
    served = quote["requests"] or 0
    return {
        "method": f"wrk -t2 -c{args.connections} -d{args.wrk_duration}s --latency: alpacasim, /live, then the quote",
        "first_answer": {k: first.get(k) for k in ("symbol", "source", "age_ms")},
        "quote_rps": quote["requests_per_s"], "live_rps": live["requests_per_s"], "sim_rps": sim["requests_per_s"],
        "ratio_to_live": round((quote["requests_per_s"] or 0) / (live["requests_per_s"] or 1), 3),
        "ratio_to_sim": round((quote["requests_per_s"] or 0) / (sim["requests_per_s"] or 1), 3),
        "quote_non_2xx": quote["non_2xx"],
        "quote_latency_ms": quote["latency_ms"], "live_latency_ms": live["latency_ms"],
        # gunicorn's master and workers (/proc), per request answered: the figure that holds on a loaded host
        "gunicorn_cpu_ms_per_request": {"live": _per_request_ms(cpu1 - cpu0, live["requests"]),
                                        "quote": _per_request_ms(cpu2 - cpu1, quote["requests"])},
        "upstream": {"quote_requests": served, "sim_requests_during": upstream,
                     "by_route": {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)},
                     "per_1000": round(upstream * 1000 / served, 3) if served else None},
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--per-client", type=int, default=10)
    ap.add_argument("--rate", type=float, default=500, help="ticks/s offered by alpacasim, all symbols together")
    ap.add_argument("--duration", type=float, default=10, help="measured window, seconds")
    ap.add_argument("--grace", type=float, default=2, help="drained: no message for this long after the window")
    ap.add_argument("--drain", type=float, default=60, help="bound on the drain, seconds")
    ap.add_argument("--ready", type=float, default=60, help="bound on every client's first ticks, seconds")
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--wrk-duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--framing", choices=("both", "message", "batch"), default="both",
                    help="one JSON object per frame (the old protocol), ?batch=1 arrays, or both in turn (default)")
    ap.add_argument("--no-rest", action="store_true", help="the fan-out only, no wrk runs")
    ap.add_argument("--rest-only", action="store_true", help="the wrk runs only (the REST quote against /live), no fan-out")
    ap.add_argument("--smoke", action="store_true", help="20 clients, a 3 s window, 2 s per wrk target")
    args = ap.parse_args(argv)
    if args.no_rest and args.rest_only:
        ap.error("--no-rest and --rest-only exclude each other")
    if args.smoke:
        args.clients, args.duration, args.wrk_duration, args.procs = 20, 3, 2, 1
    if not shutil.which("wrk"):
        result = {"bench": "hub_fanout", "error": "wrk not installed (apt-get install -y wrk)"}
        print(json.dumps(result))
        return result
    syms = symbols(args.symbols)
    ws_port = free_port()
    os.environ["OPITIOS_WS_PORT"] = str(ws_port)  # never the fixed 8092: other stacks run on this host
    companions = ("ws", "hub") if os.environ.get("REDIS_URL") else ("ws",)
    sections = {"market_data": {"default_symbols": [QUOTE_SYMBOL],
                                "max_connections_per_ip": max(50, args.clients + 10),
                                "max_connections_per_user": min(1000, max(10, args.clients + 10))}}
    with gateway_stack(companions=companions, sections=sections) as gw:
        if args.rest_only:
            quotes = rest(gw, args, syms)
            result = {"bench": "hub_fanout", "loaded": True, "loadavg_at_end": [round(x, 2) for x in os.getloadavg()], **gw.info,
                      "rest": quotes, "quote_to_live_ratio": quotes["ratio_to_live"], "quote_to_sim_ratio": quotes["ratio_to_sim"],
                      "upstream_calls_per_1000": quotes["upstream"]["per_1000"], "skipped": "--rest-only: no fan-out",
                      "targets": {"quote_to_live_ratio": TARGET_RATIO, "upstream_calls_per_1000": 0}}
            result["ok"] = bool((result["quote_to_live_ratio"] or 0) >= TARGET_RATIO and result["upstream_calls_per_1000"] == 0)
            print(json.dumps(result), flush=True)
            return result
        framings = ("message", "batch") if args.framing == "both" else (args.framing,)
        runs = {framing: fanout(gw, ws_port, args, syms, framing) for framing in framings}
        # The headline is the old protocol's (one object per frame: what existing clients get) when it ran.
        ticks = runs.get("message") or runs["batch"]
        batched = runs.get("batch")
        quotes = None if args.no_rest else rest(gw, args, syms)
        if quotes is None:
            quotes = {"ratio_to_live": None, "ratio_to_sim": None, "upstream": {"per_1000": None}, "skipped": "--no-rest"}
        result = {
            "bench": "hub_fanout",
            "loaded": True,
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
            **gw.info,
            "headline_framing": ticks["framing"],
            "tick_to_client": ticks,
            "tick_to_client_batched": batched,
            "rest": quotes,
            "p99_ms": ticks["latency_ms"]["p99"],
            "trades_lost": ticks["trades_lost"],
            "messages_per_s": ticks["messages_per_s"],
            "asgi_cpu_s": ticks["cpu_s"]["asgi"],
            "hub_cpu_s": ticks["cpu_s"]["hub"] if ticks["cpu_s"]["hub"] is not None else ticks["cpu_s"]["asgi"],
            "bench_clients_cpu_s": ticks["cpu_s"]["bench_clients"],
            "asgi_cpu_us_per_message": ticks["asgi_cpu_us_per_message"],
            **({"batched_p99_ms": batched["latency_ms"]["p99"], "batched_trades_lost": batched["trades_lost"],
                "batched_messages_per_s": batched["messages_per_s"], "batched_frames_per_s": batched["frames_per_s"],
                "batched_asgi_cpu_s": batched["cpu_s"]["asgi"],
                "batched_asgi_cpu_us_per_message": batched["asgi_cpu_us_per_message"], "batched_bench_clients_cpu_s": batched["cpu_s"]["bench_clients"]}
               if batched else {}),
            "quote_to_live_ratio": quotes["ratio_to_live"],
            "quote_to_sim_ratio": quotes["ratio_to_sim"],
            "upstream_calls_per_1000": quotes["upstream"]["per_1000"],
            "targets": {"p99_ms": TARGET_P99_MS, "trades_lost": 0, "quote_to_live_ratio": TARGET_RATIO,
                        "upstream_calls_per_1000": 0},
        }
        result["ok"] = bool((result["p99_ms"] or 1e9) <= TARGET_P99_MS and result["trades_lost"] == 0
                            and (result["quote_to_live_ratio"] or 0) >= TARGET_RATIO and result["upstream_calls_per_1000"] == 0)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
