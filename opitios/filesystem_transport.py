"""kombu's filesystem transport (the embedded broker), made to stop consuming when a worker shuts down.

The filesystem transport cannot wake on I/O, so Celery runs it in its blocking ``synloop``, which
calls ``drain_events(timeout=2.0)``; kombu's drain polls the folder every ``polling_interval`` until
a message arrives or the 2 s pass. A SIGTERM only sets ``celery.worker.state.should_stop``, which
the loop checks between drains -- and the loop runs one more drain in a ``finally`` after the check
raised. So a warm shutdown first sat out up to two full drains (4-6 s), and the last drain still took
messages off the queue: ETA'd tasks and tasks received after the SIGTERM ran before the pool could
close. With the pool's own join, the stop passed honcho's 5 s and ended in SIGKILL.

This drain checks the worker's shutdown flags before each poll: once the worker is stopping it takes
no new message and returns at once (``socket.timeout``, i.e. TimeoutError: what the loop expects of an idle drain).
Messages already taken and not acknowledged are restored to the queue by kombu as before.

While every pool slot is busy (the task channel's prefetch is used up) the drain does not list the
folder; it checks every ``busy_interval`` whether a slot freed (a task is acknowledged on the pool's
result thread) and then takes the next message at once. Sleeping the full ``polling_interval`` there
held each slot idle ~0.1 s per task, which bounded a sell sweep to ~10 checks a second per slot. The
folder is still listed every ``polling_interval`` meanwhile, for broadcast (control) messages.

kombu's ``_put`` creates the message file under its final name and only then writes it. A worker
listing the folder in between moved the empty file away, failed to decode it and died
(JSONDecodeError, "Unrecoverable error"), and the message was lost: the writer went on writing to a
file already taken. Our ``_put`` writes under a name no reader picks up and renames it into place,
so a message appears whole or not at all (a rename within one folder is atomic).
"""
from __future__ import annotations

import os
import uuid
from queue import Empty
from time import monotonic, sleep

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps


def _worker_stopping() -> bool:
    from celery.worker import state

    # An exit code (0 for a clean stop) once the worker is shutting down; None or False until then.
    return any(flag is not None and flag is not False for flag in (state.should_stop, state.should_terminate))


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # Same name scheme as kombu's (readers sort on the leading milliseconds and match the
        # ".<queue>.msg" suffix); the ".partial" suffix keeps readers off it until it is complete.
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        partial = f"{path}.partial"
        try:
            with open(partial, "wb") as f:
                f.write(dumps(payload).encode())
            os.replace(partial, path)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel

    # Lower than kombu's 1 s: the folder is listed ten times a second, so a queued task starts
    # within ~0.1 s and a shutdown is noticed as quickly.
    polling_interval = 0.1
    busy_interval = 0.002

    def _slots_full(self) -> bool:
        """A consuming channel with a prefetch limit that is used up (a broadcast channel has none)."""
        return any(ch._consumers and ch.qos.prefetch_count and not ch.qos.can_consume() for ch in self.channels)

    def drain_events(self, connection, timeout=None):
        started = monotonic()
        polled = 0.0
        while True:
            if _worker_stopping():
                raise TimeoutError()
            now = monotonic()
            full = self._slots_full()
            if not full or now - polled >= self.polling_interval:
                polled = now
                try:
                    self.cycle.get(self._deliver, timeout=timeout)
                except Empty:
                    full = self._slots_full()
                else:
                    return
            if timeout is not None and monotonic() - started >= timeout:
                raise TimeoutError() from None
            interval = self.busy_interval if full else self.polling_interval
            sleep(min(interval, timeout) if timeout else interval)
