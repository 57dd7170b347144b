"""``manage.py run_hub`` as supervisors stop it: SIGTERM ends it at once; without Redis it does nothing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.helpers.stack import REPO_ROOT, stack_factory  # noqa: F401 - the fixture

pytestmark = pytest.mark.e2e


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the leader lock needs Redis (REDIS_URL)")
def test_sigterm_stops_the_leader_at_once(stack_factory):  # noqa: F811
    stack = stack_factory(processes=("hub",))
    stack.wait_for(lambda: ": leader, streaming" in stack.app_log(), "the hub to take the leader lock", timeout=60)
    assert stack.kill("hub", signal.SIGTERM, timeout=10) == -signal.SIGTERM  # its lock expires within 5 s


def test_without_redis_there_is_no_hub_process_to_run(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL") and not k.startswith("PYTEST_")}
    env.update(DJANGO_SETTINGS_MODULE="opitios.settings.local", OPITIOS_VAR_DIR=str(tmp_path / "var"),
               OPITIOS_LOG_DIR=str(tmp_path / "logs"))
    result = subprocess.run([sys.executable, "manage.py", "run_hub"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "the ws process (python -m streaming.serve) hosts the hub" in result.stderr
