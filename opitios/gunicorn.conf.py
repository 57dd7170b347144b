"""gunicorn settings for `make run` and production.

The address comes from opitios.web_bind: OPITIOS_WEB_PORT (default 8090) on 127.0.0.1 in demo mode
(no secrets.yml), on 0.0.0.0 otherwise; GUNICORN_BIND overrides the whole address.
WEB_CONCURRENCY, GUNICORN_THREADS, GUNICORN_TIMEOUT and GUNICORN_GRACEFUL_TIMEOUT tune the rest.
Metrics: every worker writes its samples under PROMETHEUS_MULTIPROC_DIR (default var/prometheus/web),
emptied here at start, so /metrics on any worker answers for all of them (docs/deployment.md, "Metrics").
"""
import os
from pathlib import Path

from opitios import multiproc
from opitios.config import config_path
from opitios.web_bind import web_bind

multiproc.use("web")  # before any worker imports prometheus-client

bind = web_bind(demo=config_path(Path(__file__).resolve().parent.parent)[1])
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads keep a worker responsive while a request waits on Alpaca.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = "warning"
# Request-size limits, set on purpose rather than inherited (README, Operating). gunicorn refuses beyond
# them with its own 414/431 before Django runs. No API URL comes near 8 KB (symbol lists go in POST
# bodies), and a bearer token, even RS256 with every claim, is ~1 KB; larger is an attack or a bug.
limit_request_line = 8190  # request line (method, URL, query); gunicorn's maximum
limit_request_fields = 50  # header count; a browser or SDK sends < 20
limit_request_field_size = 8190  # one header line, Authorization included
# No gunicornc control socket: it defaults to $HOME/.gunicorn, which the image's and the units' user cannot
# write (gunicorn logged "Control server error" at every start), and two gunicorns on a host would share it.
control_socket_disable = True


def on_starting(server):
    """Once per master start; a reload (HUP) keeps the counters, as its old workers still write them."""
    multiproc.clean()


def post_worker_init(worker):
    """The application is loaded (Django set up): the collector leaves it alone from here (opitios/gc_freeze.py:
    a full collection cost 135-214 ms of the worker's CPU, about once every 600 orders)."""
    from opitios.gc_freeze import freeze_loaded_application

    freeze_loaded_application()


def child_exit(server, worker):
    """A dead worker's live gauges leave the sums; its counters stay (they only ever add up)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
