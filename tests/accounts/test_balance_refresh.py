"""The balance refresh asked for by orders and fills, coalesced per account (accounts/balance_refresh.py):
at most one send per account per window across processes, and never a request left without a send
after it (trailing edge). Claims go through the real shared counters (Redis, or the embedded counter
table); only the Celery send, the seam, is recorded. Each Coalescer stands for one process."""
from __future__ import annotations

import math
import random
import threading
import time

from accounts.balance_refresh import Coalescer, _claim

DEADLINE = 30.0


class Sends:
    def __init__(self):
        self.at: list[tuple[int, float]] = []
        self.lock = threading.Lock()

    def __call__(self, pk: int) -> None:
        with self.lock:
            self.at.append((pk, time.time()))


def wait_for(condition, what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def fresh_pk() -> int:
    return random.randrange(10**9, 2 * 10**9)  # counters are shared by every run: never reuse a key


def test_a_burst_costs_one_send_per_window_and_the_last_request_is_refreshed():
    sends, length, pk = Sends(), 1.0, fresh_pk()
    c = Coalescer(send=sends, window=lambda: length)
    asked = []
    for _ in range(30):
        asked.append(time.time())
        c.request(pk)
        time.sleep(0.02)
    wait_for(lambda: c.idle() and sends.at, "the burst's sends")
    windows = [math.floor(at / length) for _, at in sends.at]
    assert len(windows) == len(set(windows)), "two sends in one window"
    spanned = math.floor(asked[-1] / length) - math.floor(asked[0] / length) + 1
    assert 2 <= len(sends.at) <= spanned + 1, (len(sends.at), spanned)  # 30 requests, a handful of sends
    assert sends.at[-1][1] > asked[-1], "the last request had no send after it"


def test_another_process_request_after_a_send_is_refreshed_in_the_next_window():
    a_sends, b_sends, length, pk = Sends(), Sends(), 1.0, fresh_pk()
    a = Coalescer(send=a_sends, window=lambda: length)
    b = Coalescer(send=b_sends, window=lambda: length)
    a.request(pk)
    wait_for(lambda: a_sends.at, "process A's send")
    asked = time.time()
    b.request(pk)  # the shared window is claimed by A, before this request
    wait_for(lambda: b.idle() and a.idle(), "process B's request to be covered")
    later = [at for _, at in a_sends.at + b_sends.at if at > asked]
    assert later and math.floor(later[0] / length) > math.floor(a_sends.at[0][1] / length)


def test_no_shared_store_still_sends_once_per_window_in_this_process():
    sends, length, pk = Sends(), 1.0, fresh_pk()
    c = Coalescer(send=sends, window=lambda: length, claim=lambda *_: None)  # the store cannot be read
    c.request(pk)
    wait_for(lambda: sends.at, "the first send")
    for _ in range(9):
        c.request(pk)
    last = time.time()
    wait_for(lambda: c.idle() and sends.at and sends.at[-1][1] > last, "the sends")
    assert len(sends.at) == 2  # the first, and the trailing one for the nine asked meanwhile
    assert sends.at[1][1] - sends.at[0][1] >= length


def test_zero_window_sends_every_request():
    sends, pk = Sends(), fresh_pk()
    c = Coalescer(send=sends, window=lambda: 0.0)
    for _ in range(3):
        c.request(pk)
        wait_for(c.idle, "the send")
    assert [p for p, _ in sends.at] == [pk] * 3


def test_accounts_are_coalesced_separately():
    sends, pks = Sends(), [fresh_pk(), fresh_pk()]
    c = Coalescer(send=sends, window=lambda: 30.0)
    for pk in pks:
        c.request(pk)
    wait_for(lambda: len(sends.at) == 2, "one send per account")
    assert sorted(p for p, _ in sends.at) == sorted(pks)


def test_claims_are_shared():
    pk, window = fresh_pk(), int(time.time())
    assert _claim(pk, window, 1.0) is True
    assert _claim(pk, window, 1.0) is False
    assert _claim(pk, window + 1, 1.0) is True


def test_a_request_for_an_account_already_waiting_does_not_wake_the_sender():
    """The sender sleeps until the earliest due time; a repeat request does not move it, so the request path
    leaves the thread asleep (waking it would take the GIL from the request still answering)."""
    sends = Sends()
    c = Coalescer(send=sends, window=lambda: 60.0, claim=lambda pk, window, length: True)
    wakes = []

    class Spy(type(c._cond)):
        def notify(self, n=1):
            wakes.append(n)
            super().notify(n)

    c._cond = Spy()
    c._thread = threading.current_thread()  # stands for the running sender: none is started
    pk = fresh_pk()
    c.request(pk)
    c.request(pk)
    c.request(pk)
    assert wakes == [1]
    assert c._pending[pk][1] >= c._pending[pk][0]  # the latest request is still noted (trailing edge)
