"""The market-data hub (docs/streaming.md): one upstream connection per feed, shared by every client.

It streams the union of what connected clients want (each /ws/market-data connection announces its
symbols on ``HUB_CHANNEL`` when they change and every ``WANTS_REFRESH_SECONDS``; a connection not heard
from for ``CONN_EXPIRY_SECONDS`` is forgotten, so a new leader learns every client's wants within one
refresh), the sell bot's managed option symbols and ``market_data.default_symbols``. A symbol nobody
wants any more is unsubscribed after ``market_data.unsubscribe_grace_seconds``. Past Alpaca's 405
symbols per feed, clients are told which of theirs were not subscribed.

Every quote and trade goes to the last-value cache and, through the channel layer, to the group of its
symbol. With Redis, several hubs may run: the leader lock (streaming/leader.py) lets one stream.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

from channels.layers import get_channel_layer
from django.conf import settings

from accounts.broker.stream import SYMBOL_LIMIT, FeedStream, feed_url, stream_credentials
from opitios import config, lastvalue
from streaming import protocol, status
from streaming.selectors import managed_exit_bounds, managed_option_symbols
from streaming.ticks import TickGate

logger = logging.getLogger("opitios.hub")

HUB_CHANNEL = "md-hub"
WANTS_REFRESH_SECONDS = 2.0
CONN_EXPIRY_SECONDS = 10.0
MANAGED_REFRESH_SECONDS = 5.0
FLUSH_SECONDS = 0.05  # last-value writes are batched (latest per key wins) at this period


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def configured_feeds(cfg: config.MarketDataConfig) -> dict[str, tuple[str, str]]:
    """``{"<kind>:<feed>": (kind, feed)}``: the feeds the hub streams, named as its status names them."""
    return {f"{kind}:{feed}": (kind, feed) for kind, feed in (("stock", cfg.stock_feed), ("option", cfg.option_feed))}


class Hub:
    def __init__(self, name: str | None = None) -> None:
        self.identity = name or identity()
        self.layer = get_channel_layer()
        self.conns: dict[str, tuple[set[str], float]] = {}
        self.last_wanted: dict[str, float] = {}
        self.managed: set[str] = set()
        self.exit_bounds: dict[str, tuple[float, float]] = {}  # tick-driven exits: only bids outside these go to the bot
        self.rejected_told: dict[str, set[str]] = {}
        self.feeds: dict[str, FeedStream] = {}
        self.account_id: str | None = None
        self._pending: dict[str, dict] = {}
        self._outgoing: asyncio.Queue | None = None
        self.ticks: TickGate | None = None

    # --- leadership ----------------------------------------------------------------------------
    async def run(self) -> None:
        if not settings.REDIS_URL:
            await self.stream()  # embedded defaults: the one ASGI process hosts the only hub
            return
        from streaming.leader import LOCK_TTL_SECONDS, LeaderLock

        lock = LeaderLock(self.identity)
        while True:
            try:
                leader = await asyncio.to_thread(lock.acquire)
            except Exception as exc:  # Redis down: nobody can be sure to lead; retry
                logger.warning("hub %s: leader lock unavailable (%s)", self.identity, exc.__class__.__name__)
                leader = False
            if not leader:
                await asyncio.sleep(LOCK_TTL_SECONDS / 3)
                continue
            logger.info("hub %s: leader, streaming", self.identity)
            task = asyncio.create_task(self.stream())
            try:
                while not task.done():
                    await asyncio.sleep(LOCK_TTL_SECONDS / 3)
                    try:
                        if not await asyncio.to_thread(lock.renew):
                            logger.warning("hub %s: lost the leader lock", self.identity)
                            break
                    except Exception as exc:
                        logger.warning("hub %s: cannot renew the leader lock (%s); stepping down", self.identity, exc.__class__.__name__)
                        break
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    # --- streaming -----------------------------------------------------------------------------
    async def stream(self) -> None:
        cfg = config.current_config().market_data
        while True:
            try:
                self.account_id, key, secret = await asyncio.to_thread(stream_credentials, cfg.stream_account)
                break
            except LookupError as exc:  # no account yet (make run syncs them): keep health degraded, retry
                logger.warning("hub: %s; retrying", exc)
                await self._publish()
                await asyncio.sleep(5)
        self._outgoing = asyncio.Queue()
        self.ticks = TickGate(interval_ms=config.current_config().sell_module.tick_eval_interval_ms)
        self.feeds = {
            kind: FeedStream(name, feed_url(kind, feed), key, secret, stall_seconds=cfg.stall_seconds,
                             on_data=lambda t, s, m, kind=kind: self._on_data(kind, t, s, m), on_rejected=self._on_rejected)
            for name, (kind, feed) in configured_feeds(cfg).items()
        }
        tasks = [asyncio.create_task(f.run()) for f in self.feeds.values()]
        tasks += [asyncio.create_task(c()) for c in (self._listen, self._housekeep, self._flush, self._fan_out, self.ticks.run)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _on_data(self, kind: str, t: str, symbol: str, msg: dict) -> None:
        received = time.time()
        if t == "q":
            out = protocol.quote_message(symbol, kind, msg)
            value = self._pending[lastvalue.key("q", symbol)] = {
                "bid": out["bid_price"], "ask": out["ask_price"], "bid_size": out["bid_size"], "ask_size": out["ask_size"],
                "timestamp": out["timestamp"], "received_at": received,
            }
            bounds = self.exit_bounds.get(symbol) if kind == "option" else None
            bid = value["bid"]
            if bounds is not None and bid and (bid <= bounds[0] or bid >= bounds[1]):  # tick-driven exits (streaming/ticks.py)
                self.ticks.offer(symbol, value)
        else:
            out = protocol.trade_message(symbol, kind, msg)
            self._pending[lastvalue.key("t", symbol)] = {
                "price": out["price"], "size": out["size"], "timestamp": out["timestamp"], "received_at": received,
            }
        self._outgoing.put_nowait(out)

    def _on_rejected(self, rejected: dict[str, str]) -> None:
        asyncio.get_running_loop().create_task(self._tell_rejected(rejected))

    async def _fan_out(self) -> None:
        """Each round takes everything queued since the last and publishes it as one group message: per
        symbol its trades in order and its latest quote, encoded once for every client. Each ASGI process
        receives it once and hands each symbol's part to its own clients of that symbol in memory
        (streaming/fanout.py). A channel-layer call per symbol was a Redis round trip each, serialized by the
        layer's per-connection lock: on a loaded host the rounds fell behind the upstream."""
        while True:
            batch = [await self._outgoing.get()]
            while not self._outgoing.empty():
                batch.append(self._outgoing.get_nowait())
            parts = [[symbol, trades, quote] for symbol, (trades, quote) in protocol.by_symbol(batch).items()]
            await self.layer.group_send(protocol.ROUND_GROUP, {"type": "md.round", "r": parts})

    async def _flush(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            if self._pending:
                batch, self._pending = self._pending, {}
                try:
                    await asyncio.to_thread(lastvalue.put_many, batch)
                except Exception as exc:  # the cache is down: clients still get ticks; REST falls back
                    logger.warning("hub: last-value cache write failed (%s)", exc.__class__.__name__)

    async def _listen(self) -> None:
        while True:
            msg = await self.layer.receive(HUB_CHANNEL)
            if msg.get("type") == "hub.wants":
                symbols = set(msg.get("symbols") or ())
                if symbols:
                    self.conns[msg["conn"]] = (symbols, time.monotonic())
                else:
                    self.conns.pop(msg["conn"], None)
                    self.rejected_told.pop(msg["conn"], None)
                await self._apply()

    async def _housekeep(self) -> None:
        managed_at = float("-inf")
        while True:
            now = time.monotonic()
            if now - managed_at >= MANAGED_REFRESH_SECONDS:
                managed_at = now
                try:
                    self.managed = await asyncio.to_thread(managed_option_symbols)
                    read_at = time.time()
                    self.exit_bounds = await asyncio.to_thread(managed_exit_bounds)
                    if self.ticks is not None:  # symbols settled before this read are as the database has them
                        self.ticks.bounds_read(read_at)
                except Exception as exc:  # the database is down: keep the last known set
                    logger.warning("hub: managed symbols unavailable (%s)", exc.__class__.__name__)
            if self.ticks is not None:  # a changed tick_eval_interval_ms applies without a restart
                self.ticks.interval = config.current_config().sell_module.tick_eval_interval_ms / 1000
            for conn in [c for c, (_, seen) in self.conns.items() if now - seen > CONN_EXPIRY_SECONDS]:
                self.conns.pop(conn)
                self.rejected_told.pop(conn, None)
            await self._apply()
            await self._publish()
            await asyncio.sleep(1.0)

    async def _apply(self) -> None:
        """Subscribe each feed to the wanted symbols (in priority order, up to the limit)."""
        cfg = config.current_config().market_data
        now = time.monotonic()
        ordered = list(dict.fromkeys([*cfg.default_symbols, *sorted(self.managed),
                                      *sorted(s for syms, _ in self.conns.values() for s in syms)]))
        for s in ordered:
            self.last_wanted[s] = now
        for s in [s for s, t in self.last_wanted.items() if now - t > cfg.unsubscribe_grace_seconds]:
            del self.last_wanted[s]
        ordered += [s for s in self.last_wanted if s not in set(ordered)]  # in their grace period
        over: dict[str, str] = {}
        for kind, feed in self.feeds.items():
            mine = [s for s in ordered if protocol.data_type(s) == kind]
            feed.want(set(mine[:SYMBOL_LIMIT]))
            over.update({s: "upstream_symbol_limit" for s in mine[SYMBOL_LIMIT:]})
        if over:
            await self._tell_rejected(over)

    async def _tell_rejected(self, rejected: dict[str, str]) -> None:
        for conn, (symbols, _) in self.conns.items():
            told = self.rejected_told.setdefault(conn, set())
            mine = {s: r for s, r in rejected.items() if s in symbols and s not in told}
            if mine:
                told.update(mine)
                await self.layer.send(conn, {"type": "hub.rejected", "symbols": mine})

    async def _publish(self) -> None:
        now = time.time()
        doc = {
            "leader": self.identity,
            "account_id": self.account_id,
            "clients": len(self.conns),
            "tick_checks": {"sent": self.ticks.sent, "conflated": self.ticks.conflated, "skipped_settled": self.ticks.skipped_settled}
            if self.ticks else None,
            "feeds": {
                f.name: {
                    "connected": f.stats.connected, "subscribed": len(f.subscribed),
                    "last_message_at": f.stats.last_message_at, "reconnects_last_hour": f.stats.reconnects_last_hour(now),
                    "gaps": f.stats.gaps, "last_gap_seconds": f.stats.last_gap_seconds, "malformed": f.stats.malformed,
                    "down_since": f.stats.down_since,
                }
                for f in self.feeds.values()
            },
        }
        try:
            await asyncio.to_thread(status.publish, doc)
        except Exception as exc:
            logger.warning("hub: cannot publish its status (%s)", exc.__class__.__name__)
