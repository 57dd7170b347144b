"""`make run`'s supervisor (`python -m opitios.run`, supervisord): starts everything, serves the API and
the admin's static files, and stops every child on Ctrl-C (SIGINT)."""
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.helpers.processes import alive, describe, free_port, kill_all, process_tree, wait_gone
from tests.helpers.sockets import listening_hosts
from tests.helpers.stack import REPO_ROOT, stack_environment

pytestmark = pytest.mark.e2e


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except OSError:
        return 0


def test_make_run_serves_and_stops_every_child_on_ctrl_c(tmp_path, settings):
    env, database = stack_environment(tmp_path)
    ports = {"OPITIOS_WEB_PORT": free_port(), "OPITIOS_SIM_PORT": free_port(), "OPITIOS_FLOWER_PORT": free_port(),
             "OPITIOS_WS_PORT": free_port()}
    env.update({k: str(v) for k, v in ports.items()}, WEB_CONCURRENCY="1")
    env.pop("GUNICORN_BIND", None)
    out_path = tmp_path / "make-run.log"
    web = f"http://127.0.0.1:{ports['OPITIOS_WEB_PORT']}"
    children: set = set()
    with open(out_path, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "opitios.run"], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output() -> str:
        return out_path.read_text(errors="replace")

    try:
        deadline = time.monotonic() + 300  # migrate on a fresh database is slow on a busy machine
        while _get(f"{web}/api/v1/health") != 200:
            children |= process_tree(proc.pid)
            assert proc.poll() is None, f"make run exited ({proc.returncode}):\n{output()}"
            assert time.monotonic() < deadline, f"the web process never answered:\n{output()}"
            time.sleep(0.3)
        expected = {"web", "ws", "worker", "ticks", "beat", "listener"} | ({"flower", "hub"} if settings.REDIS_URL else set())
        deadline = time.monotonic() + 20
        while not all(f"success: {name} entered RUNNING state" in output() for name in expected):
            assert time.monotonic() < deadline, output()
            time.sleep(0.2)

        text = output()
        assert f"{web}/api/v1/docs" in text and f"{web}/admin/" in text  # it says where everything is
        assert f"ws://127.0.0.1:{ports['OPITIOS_WS_PORT']}/ws/market-data" in text
        assert ("Flower" in text) == bool(settings.REDIS_URL)
        # demo mode with its published keys listens on loopback only, and says so (SPEC §2)
        assert f"Listening  127.0.0.1:{ports['OPITIOS_WEB_PORT']}\n" in text, text
        assert listening_hosts(ports["OPITIOS_WEB_PORT"]) == {"127.0.0.1"}
        # demo mode (no secrets.yml): alpacasim runs beside the gateway, on its own port
        assert _get(f"http://127.0.0.1:{ports['OPITIOS_SIM_PORT']}/_sim/health") == 200
        # secrets.example.yml's accounts are synced, and the worker detects their types against alpacasim
        assert re.search(r"accounts synced from \S*secrets\.example\.yml: created=4 ", output()), output()
        deadline = time.monotonic() + 30
        while "account type detection: paper=3 live=1 mismatch=0 failed=0" not in output():
            assert time.monotonic() < deadline, f"the demo accounts were never detected:\n{output()}"
            time.sleep(0.3)
        # idle console: routine periodic task lines are DEBUG there, INFO in the app log (issue 12)
        app_log = tmp_path / "logs" / "app" / "opitios.log"
        deadline = time.monotonic() + 60
        while not all(line in (app_log.read_text() if app_log.exists() else "")
                      for line in ("Sending due task sellbot.watchdog", "Task sellbot.watchdog[")):
            assert time.monotonic() < deadline, "beat never sent the watchdog, or the worker never ran it"
            time.sleep(0.5)
        assert "Sending due task sellbot.watchdog" not in output() and "Task sellbot.watchdog[" not in output(), output()
        # the admin's CSS, collected at start and served by whitenoise under gunicorn
        assert _get(f"{web}/static/admin/css/base.css") == 200
        assert _get(f"{web}/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css") == 200

        children |= process_tree(proc.pid)
        assert len(alive(children)) >= 6, describe(children)
        os.kill(proc.pid, signal.SIGINT)  # what Ctrl-C delivers to the supervisor
        proc.wait(timeout=60)  # beyond every child's stop bound (opitios/supervisord_conf.py)
        left = wait_gone(children, timeout=5)
        assert not left, f"orphans after Ctrl-C:\n{describe(left)}\n{output()}"
        assert "received SIGINT indicating exit request" in output()
        assert "with SIGKILL" not in output(), output()  # every child stopped on SIGTERM, in time
    finally:
        children |= process_tree(proc.pid)  # before the supervisor goes: its children would be re-parented
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        kill_all(children)
        if database is not None:
            database.drop()
