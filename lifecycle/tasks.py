"""Celery tasks of the lifecycle app."""
from __future__ import annotations

from celery import shared_task

from .watch import listener_check


# Beat sends it every STREAM_WATCH_SECONDS; a lost run is replaced by the next one.
@shared_task(name="lifecycle.watch", ignore_result=True, soft_time_limit=10, time_limit=15)
def watch() -> dict[int, str]:
    return listener_check()
