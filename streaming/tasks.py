"""Celery tasks of the streaming app."""
from __future__ import annotations

from celery import shared_task

from streaming.watch import hub_check


# Beat sends it every STREAM_WATCH_SECONDS; a lost run is replaced by the next one.
@shared_task(name="streaming.watch", ignore_result=True, soft_time_limit=10, time_limit=15)
def watch() -> dict[str, str]:
    return hub_check()
