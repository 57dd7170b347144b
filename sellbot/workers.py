"""Celery workers of the sell bot: this process's name, and which workers answer a ping."""
from __future__ import annotations

import os
import socket

from django.core.cache import cache

from opitios.celery import app


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def live_workers(*, timeout: float = 0.5) -> list[str]:
    """Workers answering a broadcast ping, cached for a few seconds so the status API stays cheap."""
    cached = cache.get("sellbot:live_workers")
    if cached is not None:
        return cached
    try:
        replies = app.control.ping(timeout=timeout) or []
        names = sorted(name for reply in replies for name in reply)
    except Exception:
        names = []
    try:
        cache.set("sellbot:live_workers", names, 5)
    except Exception:
        pass
    return names
