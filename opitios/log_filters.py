"""Console-only filters: an idle `make run` must not scroll its banner away.

Celery logs three INFO lines per periodic task run (beat sent it, the worker received it, it
succeeded), a dozen lines a minute with nothing happening. On the console they count as DEBUG;
the app log file (and Flower) keep them at INFO. A failure or retry of the same task is untouched.
"""
from __future__ import annotations

import logging

# The loggers and messages of a task's routine life.
_ROUTINE = {
    "celery.beat": "Scheduler: Sending due task ",
    "celery.worker.strategy": "Task ",
    "celery.app.trace": "Task ",
}
_ROUTINE_ENDINGS = {"celery.worker.strategy": "] received"}


class RoutineTaskFilter(logging.Filter):
    """Drops the routine INFO lines of ``tasks`` unless the console shows DEBUG (``level``)."""

    def __init__(self, tasks=(), level: str | int = "INFO") -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.show = logging._checkLevel(level) <= logging.DEBUG

    def filter(self, record: logging.LogRecord) -> bool:
        if self.show or record.levelno != logging.INFO:
            return True
        prefix = _ROUTINE.get(record.name)
        if prefix is None:
            return True
        message = record.getMessage()
        if not message.startswith(prefix):
            return True
        if record.name == "celery.app.trace" and " succeeded in " not in message:
            return True
        ending = _ROUTINE_ENDINGS.get(record.name)
        if ending and not message.endswith(ending):
            return True
        named = message[len(prefix):]
        return not any(named.startswith((f"{task}[", f"{task} ")) for task in self.tasks)
