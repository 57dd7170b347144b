"""The Celery app. Tasks live in each app's ``tasks.py``; beat entries in settings ``CELERY_BEAT_SCHEDULE``."""
import logging
import os
import signal
import sys

from celery import Celery
from celery.signals import setup_logging, task_prerun, worker_init, worker_process_init, worker_process_shutdown

from opitios import multiproc

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.local")

# A worker with OPITIOS_WORKER_METRICS_PORT serves its pool's metrics on that port (docs/deployment.md,
# "Metrics"). Its sample directory is per port, so two workers on one host never empty each other's.
# This runs before Django (and so prometheus-client) is imported.
METRICS_PORT = int(os.environ.get("OPITIOS_WORKER_METRICS_PORT") or 0)
if METRICS_PORT and "worker" in sys.argv[1:]:
    multiproc.prepare(f"worker-{METRICS_PORT}")

app = Celery("opitios")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["opitios"], related_name="alerts")  # opitios is no Django app


@setup_logging.connect
def _use_django_logging(**kwargs):
    """Workers and beat use the logging that Django settings configured (docs/operations.md, "Logs")."""
    from django.conf import settings

    settings.LOGGING  # noqa: B018 - importing settings applies opitios.logging.configure


@worker_init.connect
def _lower_cpu_priority(**kwargs):
    """Before the pool forks, so every pool process inherits it (settings.OPITIOS_WORKER_NICE)."""
    from django.conf import settings

    if settings.OPITIOS_WORKER_NICE > 0 and not _consumes_only_ticks(sys.argv):
        os.nice(settings.OPITIOS_WORKER_NICE)


def _consumes_only_ticks(argv: list[str]) -> bool:
    """The ticks worker (``-Q ticks``) keeps its priority: a tick-driven exit is latency-bound, and its
    work is bounded (one evaluation per symbol per tick_eval_interval_ms, docs/streaming.md)."""
    from django.conf import settings

    for i, arg in enumerate(argv):
        queues = argv[i + 1] if arg in ("-Q", "--queues") and i + 1 < len(argv) else arg.partition("=")[2] if arg.startswith("--queues=") else None
        if queues is not None:
            return queues.split(",") == [settings.TICK_QUEUE]
    return False


@worker_init.connect
def _serve_metrics(**kwargs):
    """The exporter thread runs in the main process; pool children write the sample files it reads.
    It binds OPITIOS_WORKER_METRICS_ADDRESS (loopback by default): no token on this port."""
    if not (METRICS_PORT and multiproc.enabled()):
        return
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    address = os.environ.get("OPITIOS_WORKER_METRICS_ADDRESS", "127.0.0.1")
    try:
        start_http_server(METRICS_PORT, addr=address, registry=registry)
    except OSError as exc:  # a taken port costs the metrics, never the worker
        logging.getLogger("opitios.metrics").error("worker metrics exporter not started on %s:%s: %s", address, METRICS_PORT, exc)


@worker_process_shutdown.connect
def _forget_pool_child(pid=None, **kwargs):
    if multiproc.enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


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
