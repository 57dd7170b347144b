"""The stream-down alert through the whole stack: beat sends the checks (streaming/watch.py, lifecycle/watch.py)
every 15 s, a Celery worker runs them and sends the alerts to a webhook receiver this test starts. The hub (on
embedded defaults, the ws process that hosts it) and the trade-updates listener are SIGKILLed: one "stream down"
message each once the threshold has passed; started again: one "resolved" each. Runs on embedded defaults and on
PostgreSQL + Redis."""
from __future__ import annotations

import json
import os
import signal
from collections import Counter

import pytest
import yaml

from tests.e2e.faultstack import ACCOUNTS, stack_env
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

THRESHOLD = 10  # the least alerts.stream_down_seconds allows
HUB = "market-data stream down: hub"
SHARD = "trade-updates stream down: shard 0/1"


def _last_result(stack, task: str, since: int) -> str:
    done = stack.tasks_done(task, since=since)
    return done[-1].rest if done else ""


def test_a_killed_hub_and_listener_alert_once_and_resolve_once(stack_factory, sim, tmp_path, receiver):  # noqa: F811
    secrets = tmp_path / "secrets.yml"
    secrets.write_text(yaml.safe_dump({"jwt": {"algorithm": "HS256"}, "accounts": ACCOUNTS,
                                       "alerts": {"urls": [receiver.url], "stream_down_seconds": THRESHOLD}}))
    hub = "hub" if os.environ.get("REDIS_URL") else "ws"  # without Redis the ws process hosts the hub
    processes = ("ws", "hub", "listener", "worker", "beat") if hub == "hub" else ("ws", "listener", "worker", "beat")
    stack = stack_factory(processes=processes, env=stack_env(sim, secrets, OPITIOS_ALERT_RESOLVE_HOLD_SECONDS="1"))

    mark = stack.log_mark()
    stack.wait_for(lambda: "'hub': 'up'" in _last_result(stack, "streaming.watch", mark)
                   and "{0: 'up'}" in _last_result(stack, "lifecycle.watch", mark), "both checks to see the streams up", timeout=120)
    assert receiver.delivered() == []

    stack.kill(hub, signal.SIGKILL)
    stack.kill("listener", signal.SIGKILL)
    # hub: stale after 5 s, down past 10 s, next check within 15 s; listener: its report expires after 30 s
    stack.wait_for(lambda: {HUB, SHARD} <= {m["title"].removeprefix("[Opitios] ") for m in receiver.delivered()},
                   "the two stream-down alerts", timeout=180)

    stack.restart(hub)
    stack.restart("listener")
    resolved = {f"resolved: {HUB}", f"resolved: {SHARD}"}
    stack.wait_for(lambda: resolved <= {m["title"].removeprefix("[Opitios] ") for m in receiver.delivered()},
                   "the two resolved messages", timeout=120)
    titles = Counter(m["title"].removeprefix("[Opitios] ") for m in receiver.delivered())
    assert titles == Counter({HUB: 1, SHARD: 1, **dict.fromkeys(resolved, 1)}), titles
    text = json.dumps(receiver.delivered())
    assert not any(account["secret_key"] in text or account["api_key"] in text for account in ACCOUNTS.values())
