"""The whole stack as `make run` starts it: gunicorn, a Celery worker and beat, as real processes.

Runs on embedded defaults, or on PostgreSQL and Redis when DATABASE_URL and REDIS_URL are set.
"""
import re

import pytest

from opitios.auth import issue_token

pytestmark = pytest.mark.e2e


def test_web_worker_and_beat_work_together_and_stop_cleanly(stack_factory, settings):
    stack = stack_factory(beat_interval=1)
    pids = stack.pids()
    assert len(pids) >= 5, pids  # gunicorn master + worker, celery worker + pool, beat

    status, body = stack.get("/api/v1/health")
    assert (status, body["status"]) == (200, "ok")
    status, body = stack.get("/api/v1/ready")
    assert status == 200, f"{body}\n{stack.diagnostics()}"

    # a task through the real broker and worker, its result through the result backend
    assert stack.call_task("debug.ping") == "pong"

    # beat's fast test entry fires and a worker runs it
    stack.wait_for(lambda: "Sending due task debug-ping (debug.ping)" in stack.app_log(), "beat to send debug-ping")
    stack.wait_for(lambda: len(re.findall(r"Task debug\.ping\[[0-9a-f-]+\] succeeded in .*: 'pong'", stack.app_log())) >= 2, "the worker to run beat's ping")

    # the same logging config in every process: worker and beat lines in logs/app/opitios.log
    app_log = stack.app_log()
    assert f"{stack.node_name()} ready." in app_log  # the worker's startup line
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO celery\.beat \| Scheduler: Sending due task", app_log, re.M)
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO celery\.app\.trace \| Task debug\.ping", app_log, re.M)

    # detailed health from the web process sees the worker through the broker
    token = issue_token(user_id="ops", permissions=["admin"])
    status, body = stack.get("/api/v1/health/detailed", token=token)
    assert status == 200, body
    checks = body["checks"]
    assert stack.node_name() in checks["workers"]["workers"], f"{body}\n{stack.diagnostics()}"
    assert checks["database"]["vendor"] == ("postgresql" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "sqlite")
    assert checks["broker"]["transport"] == ("redis" if settings.REDIS_URL else "filesystem")
    for name in ("database", "cache", "redis", "broker", "workers", "config"):
        assert checks[name]["status"] == "ok", body
    # no broker runs beside this stack, so the accounts' balances cannot refresh: degraded, not down
    assert checks["accounts"]["status"] == "degraded" and body["status"] == "degraded", body

    stack.stop()  # raises if any process or descendant is left
    assert not stack.pids()
    assert all(not up for up in stack.running().values())
