"""The Celery app. Tasks live in each app's ``tasks.py``; beat entries in settings ``CELERY_BEAT_SCHEDULE``."""
import os
import signal

from celery import Celery
from celery.signals import setup_logging, task_prerun, worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.local")

app = Celery("opitios")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _use_django_logging(**kwargs):
    """Workers and beat use the logging that Django settings configured (docs/operations.md, "Logs")."""
    from django.conf import settings

    settings.LOGGING  # noqa: B018 - importing settings applies opitios.logging.configure


@worker_init.connect
def _lower_cpu_priority(**kwargs):
    """Before the pool forks, so every pool process inherits it (settings.OPITIOS_WORKER_NICE)."""
    from django.conf import settings

    if settings.OPITIOS_WORKER_NICE > 0:
        os.nice(settings.OPITIOS_WORKER_NICE)


@task_prerun.connect
def _database_like_a_request(sender=None, **kwargs):
    """What Django does at each request start: drop a connection that broke or outlived
    CONN_MAX_AGE, and health-check the kept one before its first query (CONN_HEALTH_CHECKS), so
    a PostgreSQL restart costs one reconnect, not a failed task. Not for an eager task: it runs
    in its caller's connection (and maybe transaction), as Celery's own fixup also leaves it."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_process_init.connect
def _pool_children_ignore_sigterm(**kwargs):
    """Supervisors (supervisord in `make run`, systemd) send SIGTERM to the worker's whole process group. The
    main process then shuts down warmly and retires its pool children itself (billiard falls back
    to SIGKILL); a child killed by the group's SIGTERM mid-task would lose the task and wedge the
    warm shutdown until the supervisor's SIGKILL."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@app.task(name="debug.ping")
def ping() -> str:
    return "pong"
