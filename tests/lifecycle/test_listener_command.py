"""``manage.py listen_trade_updates`` keeps the collector off the loaded application before it listens: a full
collection over Django's objects stalled the event loop (event → receive p99 about 75 ms in bench.lifecycle,
about 5 ms once frozen; docs/performance.md)."""
from __future__ import annotations

import gc

from django.core.management import call_command

from lifecycle.management.commands import listen_trade_updates as command
from opitios.gc_freeze import freeze_loaded_application


def test_the_listener_freezes_the_loaded_application_before_it_listens(monkeypatch):
    calls = []
    monkeypatch.setattr(command, "freeze_loaded_application", lambda: calls.append("freeze"))

    class Listener:
        def __init__(self, **kwargs):
            pass

        def stop(self):
            pass

        async def run(self):
            calls.append("listen")

    monkeypatch.setattr(command, "Listener", Listener)
    call_command("listen_trade_updates")
    assert calls == ["freeze", "listen"]


def test_freezing_moves_what_is_loaded_out_of_the_collector():
    try:
        freeze_loaded_application()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
