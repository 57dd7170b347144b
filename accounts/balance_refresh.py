"""The balance refresh an accepted order or a fill asks for, coalesced per account (docs/architecture.md,
"Balance refresh after orders and fills").

``balance_refresh_request(account_pk=...)`` only notes the account and wakes this process's sender
thread: the request path sends no Celery message. The sender sends ``accounts.refresh_balance`` at
most once per account per window of ``trading.balance_refresh_coalesce_s`` seconds, across every
process: windows are fixed slices of the epoch clock, and a send first claims its window with one
shared counter (``accounts.budget.counters``: Redis, or the embedded counter table), so the first
claim of a window sends and the others wait.

No request is lost (trailing edge): a request whose window was already claimed, possibly before
the request was made, is claimed again in the next window, which starts after it; that claim either
sends, or finds that another process sent in that window, after the request, and is done. When the
shared store cannot be read, the sender sends (a refresh too many, never one too few) and this
process still keeps one per account per window. A request still waiting when its process exits
is covered by the beat refresh (``trading.balance_refresh_seconds``).
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable

from opitios.config import current_config

from . import budget

logger = logging.getLogger("opitios.accounts")

REFRESH_TASK = "accounts.refresh_balance"
KEY_PREFIX = "balref"


def _send_task(account_pk: int) -> None:
    from opitios.celery import app  # at send time: the Celery app imports the task modules

    app.send_task(REFRESH_TASK, args=[account_pk], retry=False, ignore_result=True)


def _configured_window() -> float:
    return float(current_config().trading.balance_refresh_coalesce_s)


def _claim(account_pk: int, window: int, length: float) -> bool | None:
    """True: this process sends for the window; False: another one already did; None: unknown."""
    try:
        (value,), _ = budget.counters.incr({f"{KEY_PREFIX}:{account_pk}:{window}": 1}, ttl=int(length) + 60, strict=True)
    except Exception as exc:  # noqa: BLE001 - no shared store (or it failed): send rather than lose the refresh
        logger.debug("balance refresh claim unavailable: %s", exc.__class__.__name__)
        return None
    return value == 1


class Coalescer:
    """Per-account trailing-edge coalescing of one kind of message, sent from one daemon thread."""

    def __init__(self, *, send: Callable[[int], None] = _send_task, window: Callable[[], float] = _configured_window,
                 claim: Callable[[int, int, float], bool | None] = _claim) -> None:
        self._send, self._window, self._claim = send, window, claim
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the parent's thread does not exist in the child

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[int, list[float]] = {}  # account pk -> [due (epoch s), latest request (epoch s)]
        self._sent_at: dict[int, float] = {}  # account pk -> when this process last sent (epoch s)
        self._thread: threading.Thread | None = None
        self.sent = 0

    def request(self, account_pk: int) -> None:
        now = time.time()
        with self._cond:
            entry = self._pending.get(account_pk)
            if entry is not None:
                # Already waiting: its due time, the one the thread sleeps until, does not change. Waking the
                # thread would only make it take the GIL from the request that is still answering.
                entry[1] = now
                return
            self._pending[account_pk] = [now, now]
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="balance-refresh", daemon=True)
                self._thread.start()
            self._cond.notify()

    def idle(self) -> bool:
        with self._cond:
            return not self._pending

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = time.time()
                    due = [pk for pk, (at, _) in self._pending.items() if at <= now]
                    if due:
                        break
                    wake = min((at for at, _ in self._pending.values()), default=None)
                    self._cond.wait(None if wake is None else max(0.0, wake - now))
            for pk in due:
                try:
                    self._step(pk)
                except Exception:  # noqa: BLE001 - keep the thread; the beat refresh still runs
                    logger.exception("balance refresh coalescing failed account_pk=%s", pk)
                    with self._cond:
                        self._pending.pop(pk, None)

    def _step(self, pk: int) -> None:
        length = self._window()
        now = time.time()
        with self._cond:
            latest = self._pending[pk][1]
        if length <= 0:
            claimed = True
        else:
            last = self._sent_at.get(pk)
            if last is not None and now < last + length:  # this process sent this window: wait for the next
                with self._cond:
                    self._pending[pk][0] = last + length
                return
            claimed = self._claim(pk, math.floor(now / length), length)
        if claimed is False:
            if math.floor(now / length) > math.floor(latest / length):
                # Another process sent in this window, which began after the latest request.
                with self._cond:
                    if self._pending[pk][1] == latest:
                        del self._pending[pk]
                return
            with self._cond:  # claimed before the request: the next window's claim covers it
                self._pending[pk][0] = (math.floor(latest / length) + 1) * length
            return
        with self._cond:
            if self._pending[pk][1] == latest:
                del self._pending[pk]
            else:  # asked again while claiming: the next window covers that one
                self._pending[pk][0] = now + max(length, 0.0)
            self._sent_at[pk] = now
        try:
            self._send(pk)
            self.sent += 1
        except Exception as exc:  # noqa: BLE001 - the snapshot just ages; the beat refresh still runs
            logger.error("balance refresh not enqueued account_pk=%s error=%s", pk, exc.__class__.__name__)


coalescer = Coalescer()


def balance_refresh_request(*, account_pk: int) -> None:
    """Ask for the account's balance refresh (after an accepted order's or a fill's commit); returns at once."""
    coalescer.request(account_pk)
