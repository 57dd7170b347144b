"""The trade-updates listener: one asyncio process holding one stream per enabled account of its shard
(docs/operations.md, "Trade-updates listener").

- Shards: account pk mod ``LIFECYCLE_SHARD_COUNT`` == ``LIFECYCLE_SHARD_INDEX``. With Redis, a shard is held
  under a lease (``lifecycle:lease:<index>``, renewed every poll, expiring after ``LEASE_SECONDS``), so a
  second node started with the same index waits until the first one stops. The ledger is idempotent, so a
  lease lost to a pause costs duplicates ignored, never a double count.
- Accounts: the table is polled every ``LIFECYCLE_POLL_SECONDS`` (its count and latest ``updated_at``, then
  the rows when either moved): enabling, disabling or re-keying an account, in the admin or by sync, starts,
  stops or restarts its stream without a restart.
- Each stream reconnects with exponential backoff and full jitter, and reconciles its account over REST on
  every connection (the first included: a restart is a gap too) before it reads events. An event that cannot
  be written drops the connection, so the reconcile after it recovers the event.
- Writes: each stream's reader queues its events; the account's loop hands everything queued to one
  writer, which commits whatever all accounts have waiting as one ledger transaction
  (``handling.updates_handle``) while the next batch gathers. A burst of fills thus costs one commit and
  one database round trip per statement, not one transaction per event queued behind the others on the
  thread pool (bench.lifecycle). On PostgreSQL two batches are in flight at once (``WRITER_DEPTH``), so
  one's round trips overlap the other's. An account's events keep their order: its loop awaits its batch.
- Health: every poll the shard's owner (a standby, never) puts the shard's figures in the cache
  (``lifecycle:shard:<index>``), read by ``/health/detailed``, the metrics and the stream-down alert
  (lifecycle/watch.py).
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, connections
from django.db.models import Count, Max
from django.db.models.functions import Mod

from accounts.broker import BrokerError, BrokerRejected
from accounts.broker.trade_stream import StreamTarget, TradeStream, stream_target, stream_url
from accounts.models import AlpacaAccount
from opitios.logging import register_secrets

from .handling import account_reconcile, updates_handle

logger = logging.getLogger("opitios.lifecycle")

LEASE_SECONDS = 15.0
BACKOFF_BASE, BACKOFF_CAP = 0.5, 30.0
STATE_TTL = 30
MAX_BATCH_EVENTS = 500  # per ledger transaction; more waiting goes into the next one
READ_AHEAD = 1000  # events a stream's reader queues before it waits for the writer
WRITER_DEPTH = 2  # ledger batches in flight at once (LedgerWriter)


def shard_key(index: int) -> str:
    return f"lifecycle:shard:{index}"


def streamed_accounts(shard_count: int):
    """The accounts the listeners stream, each annotated with its ``shard``: enabled, with a valid config."""
    return AlpacaAccount.objects.filter(enabled=True, config_error="").annotate(shard=Mod("pk", shard_count))


def backoff_delay(attempt: int, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)], so 1,000 streams do not reconnect in step."""
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 16)))


@dataclass
class StreamState:
    target: StreamTarget
    task: asyncio.Task | None = None
    connected: bool = False
    connected_at: float | None = None
    last_event_at: float | None = None
    reconnects: int = 0
    events: int = 0
    recovered: int = 0
    errors: list[str] = field(default_factory=list)
    down_since: float | None = field(default_factory=time.time)  # None while connected


class LedgerWriter:
    """Group commit: what accumulates while a batch commits is the next batch. ``depth`` batches may be in
    flight at once, on separate connections: a batch spends most of its time waiting on round trips, and
    the next one's record locks, inserts and updates overlap them (their accounts are disjoint: an
    account's loop awaits its batch; the audit chain's head, locked last, orders their commits)."""

    def __init__(self, sync, *, depth: int = 1) -> None:
        self._sync = sync
        self.depth = depth
        self._waiting: deque[tuple[AlpacaAccount, list, asyncio.Future]] = deque()
        self._wake = asyncio.Event()
        self.batches = 0

    async def write(self, account: AlpacaAccount, updates: list) -> None:
        """Once ``updates`` have committed; raises what stopped them."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((account, updates, done))
        self._wake.set()
        error = await done
        if error is not None:
            raise error

    async def run(self) -> None:
        await asyncio.gather(*(self._drain() for _ in range(self.depth)))

    async def _drain(self) -> None:
        while True:
            while not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            batch, n = [], 0
            while self._waiting and (not batch or n + len(self._waiting[0][1]) <= MAX_BATCH_EVENTS):
                batch.append(self._waiting.popleft())
                n += len(batch[-1][1])
            try:
                outcomes = await self._sync(updates_handle, [(account, updates) for account, updates, _ in batch])
            except Exception as exc:  # noqa: BLE001 - the database away: every stream in the batch reconnects
                outcomes = [exc] * len(batch)
            self.batches += 1
            for (_, _, done), outcome in zip(batch, outcomes, strict=True):
                if not done.done():  # a stream stopped meanwhile
                    done.set_result(outcome)


class Listener:
    def __init__(self, *, shard_index: int = 0, shard_count: int = 1, poll_seconds: float | None = None, threads: int = 8) -> None:
        if not 0 <= shard_index < shard_count:
            raise ValueError(f"shard index {shard_index} outside 0..{shard_count - 1}")
        self.shard_index, self.shard_count = shard_index, shard_count
        self.poll_seconds = settings.LIFECYCLE_POLL_SECONDS if poll_seconds is None else poll_seconds
        self.node = f"{socket.gethostname()}:{os.getpid()}"
        self.streams: dict[int, StreamState] = {}
        self._threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lifecycle")
        self._accounts: dict[int, AlpacaAccount] = {}
        self._seen: tuple | None = None
        self._stop = asyncio.Event()
        self.holds_lease = False
        # Two batches in flight on PostgreSQL (bench.lifecycle); SQLite has one writer at a time anyway.
        self.writer = LedgerWriter(self._sync, depth=WRITER_DEPTH if connections["default"].vendor == "postgresql" else 1)

    # --- threads (Django ORM, REST) ----------------------------------------------------------
    async def _sync(self, fn, /, *args, **kwargs):
        def call():
            close_old_connections()
            try:
                return fn(*args, **kwargs)
            finally:
                close_old_connections()

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _mine(self):
        return streamed_accounts(self.shard_count).filter(shard=self.shard_index)

    def _changed(self) -> bool:
        seen = tuple(AlpacaAccount.objects.aggregate(n=Count("pk"), at=Max("updated_at")).values())
        changed, self._seen = seen != self._seen, seen
        return changed

    def _targets(self) -> dict[int, StreamTarget]:
        targets = {}
        for account in self._mine():
            known = self.streams.get(account.pk)
            url = stream_url(settings.ALPACA_PAPER_URL if account.paper_trading else settings.ALPACA_LIVE_URL)
            if known is not None and known.target.fingerprint == (account.api_key_encrypted, account.secret_key_encrypted, url):
                targets[account.pk] = known.target  # unchanged keys: no decryption
                self._accounts[account.pk] = account
                continue
            try:
                targets[account.pk] = stream_target({"pk": account.pk, "account_id": account.account_id,
                                                     "paper_trading": account.paper_trading,
                                                     "api_key_encrypted": account.api_key_encrypted,
                                                     "secret_key_encrypted": account.secret_key_encrypted}, register=False)
            except Exception as exc:  # undecryptable keys: the account is reported, never the process stopped
                logger.error("trade stream not started account=%s error=%s", account.account_id, exc.__class__.__name__)
                continue
            self._accounts[account.pk] = account
        # One regex compile for the batch: registering 2,000 keys one by one is quadratic.
        register_secrets([v for t in targets.values() for v in (t.api_key, t.secret_key)])
        return targets

    def _lease(self) -> bool:
        """Hold this shard's lease (always held without Redis: one node)."""
        if not settings.REDIS_URL:
            return True
        key = f"lifecycle:lease:{self.shard_index}"
        if cache.add(key, self.node, LEASE_SECONDS) or cache.get(key) == self.node:
            cache.touch(key, LEASE_SECONDS)
            return True
        return False

    def _release(self) -> None:
        key = f"lifecycle:lease:{self.shard_index}"
        if settings.REDIS_URL and cache.get(key) == self.node:
            cache.delete(key)

    # --- streams -----------------------------------------------------------------------------
    async def _account_loop(self, state: StreamState) -> None:
        attempt = 0
        while not self._stop.is_set():
            target = state.target
            try:
                async with TradeStream(target) as stream:
                    # Listening already, so nothing new is missed; connected once the gap is reconciled.
                    state.recovered += await self._sync(account_reconcile, account=self._accounts[target.pk])
                    state.connected, state.connected_at, state.down_since, attempt = True, time.time(), None, 0
                    await self._write_from(stream, state)
            except asyncio.CancelledError:
                raise
            except BrokerRejected as exc:
                logger.error("trade stream refused account=%s: %s", target.account_id, exc.message)
                attempt = max(attempt, 5)  # wrong keys stay wrong until someone re-keys the account
            except BrokerError as exc:
                logger.warning("trade stream lost account=%s: %s", target.account_id, exc.message)
            except Exception as exc:  # a write that failed: reconnect, and the reconcile recovers the event
                logger.exception("trade update not recorded account=%s error=%s", target.account_id, exc.__class__.__name__)
            state.connected = False
            state.down_since = state.down_since or time.time()
            state.reconnects += 1
            try:
                await asyncio.wait_for(self._stop.wait(), backoff_delay(attempt))
            except TimeoutError:
                pass
            attempt += 1

    async def _write_from(self, stream: TradeStream, state: StreamState) -> None:
        """Until the stream ends: everything its reader queued since the last write, written as one."""
        queue: asyncio.Queue = asyncio.Queue(READ_AHEAD)
        reader = asyncio.create_task(self._read(stream, queue))
        try:
            while True:
                batch = [await queue.get()]
                while not queue.empty():
                    batch.append(queue.get_nowait())
                updates = [u for u in batch if not isinstance(u, Exception)]
                if updates:
                    state.last_event_at = time.time()
                    await self.writer.write(self._accounts[state.target.pk], updates)
                    state.events += len(updates)
                if isinstance(batch[-1], Exception):  # the reader's last item: how the stream ended
                    raise batch[-1]
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    @staticmethod
    async def _read(stream: TradeStream, queue: asyncio.Queue) -> None:
        try:
            async for update in stream.updates():
                await queue.put(update)
        except Exception as exc:  # noqa: BLE001 - handed to the loop, which raises it after the events before it
            await queue.put(exc)

    def _start(self, target: StreamTarget) -> None:
        state = self.streams[target.pk] = StreamState(target)
        state.task = asyncio.create_task(self._account_loop(state), name=f"trade-stream-{target.account_id}")

    async def _stop_stream(self, pk: int) -> None:
        state = self.streams.pop(pk)
        if state.task is not None:
            state.task.cancel()
            await asyncio.gather(state.task, return_exceptions=True)

    async def _refresh(self) -> None:
        held = await self._sync(self._lease)
        if held != self.holds_lease:
            logger.info("trade-updates shard %s/%s lease %s node=%s", self.shard_index, self.shard_count,
                        "taken" if held else "lost", self.node)
        self.holds_lease = held
        if not held:
            for pk in list(self.streams):
                await self._stop_stream(pk)
            self._seen = None
            return
        if not await self._sync(self._changed):
            return
        targets = await self._sync(self._targets)
        for pk in [pk for pk, s in self.streams.items() if pk not in targets or s.target.fingerprint != targets[pk].fingerprint]:
            await self._stop_stream(pk)
        for pk, target in targets.items():
            if pk not in self.streams:
                self._start(target)

    def snapshot(self) -> dict:
        now = time.time()
        ages = [now - (s.last_event_at or s.connected_at) for s in self.streams.values() if s.connected and s.connected_at]
        down = [s.down_since for s in self.streams.values() if not s.connected and s.down_since is not None]
        return {
            "node": self.node, "shard": self.shard_index, "shards": self.shard_count, "lease": self.holds_lease,
            "expected": len(self.streams), "connected": sum(s.connected for s in self.streams.values()),
            "reconnects": sum(s.reconnects for s in self.streams.values()),
            "events": sum(s.events for s in self.streams.values()),
            "recovered": sum(s.recovered for s in self.streams.values()),
            "oldest_last_event_age_seconds": round(max(ages), 3) if ages else None,
            "down_since": min(down) if down else None,  # the longest-disconnected stream's
            "at": now,
        }

    async def _publish(self) -> None:
        if self.holds_lease:  # a standby's empty figures would hide the owner's
            await self._sync(cache.set, shard_key(self.shard_index), self.snapshot(), STATE_TTL)

    async def run(self) -> None:
        logger.info("trade-updates listener shard %s/%s node=%s", self.shard_index, self.shard_count, self.node)
        writer = asyncio.create_task(self.writer.run(), name="trade-updates-writer")
        try:
            while not self._stop.is_set():
                try:
                    await self._refresh()
                    await self._publish()
                except Exception as exc:  # the database or cache away for a moment: streams keep running
                    logger.warning("trade-updates listener refresh failed: %s", exc.__class__.__name__)
                try:
                    await asyncio.wait_for(self._stop.wait(), self.poll_seconds)
                except TimeoutError:
                    pass
        finally:
            for pk in list(self.streams):
                await self._stop_stream(pk)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            await self._sync(self._release)
            if self.holds_lease:
                await self._sync(cache.delete, shard_key(self.shard_index))  # a stopped shard reports as missing
            await self._close_connections()
            self._executor.shutdown(wait=True)

    async def _close_connections(self) -> None:
        """Every pool thread closes its database connection (one task each: they meet at a barrier)."""
        barrier = threading.Barrier(self._threads)

        def close():
            try:
                barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass
            connections.close_all()

        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, close) for _ in range(self._threads)))

    def stop(self) -> None:
        self._stop.set()
