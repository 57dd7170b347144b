"""supervisord event listener: a process the supervisor restarts alerts a human (docs/deployment.md, "Alerts").

``make run``'s supervisord starts it (opitios/supervisord_conf.py). An unexpected exit raises
``process_restarted:<name>``, a process given up on (FATAL) ``process_fatal:<name>``; the process
running again resolves both (after the alerts' hold, so a crash loop is one message and one
"resolved"). The raise is sent from here, not through Celery: the crashed process may be the worker.
stdout is the supervisor protocol; logs go to stderr.
"""
from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger("opitios.alerts")

EVENTS = "PROCESS_STATE_EXITED,PROCESS_STATE_FATAL,PROCESS_STATE_RUNNING"
LISTENER_NAME = "alerts"


def handle(event: str, fields: dict[str, str]) -> None:
    from opitios.alerts import alert_raise, alert_resolve

    name = fields.get("processname", "?")
    if fields.get("groupname") == LISTENER_NAME or name == LISTENER_NAME:
        return
    if event == "PROCESS_STATE_EXITED" and fields.get("expected") == "0":
        alert_raise(f"process_restarted:{name}", f"{name} exited unexpectedly and was restarted",
                    f"supervisord saw {name} (pid {fields.get('pid', '?')}) exit from {fields.get('from_state', '?')}; "
                    "it restarts it with backoff. Its log says why.", direct=True)
    elif event == "PROCESS_STATE_FATAL":
        alert_raise(f"process_fatal:{name}", f"{name} keeps failing: supervisord gave up",
                    f"{name} failed to start too many times in a row and is FATAL; start it again once fixed.", direct=True)
    elif event == "PROCESS_STATE_RUNNING":
        alert_resolve(f"process_restarted:{name}")
        alert_resolve(f"process_fatal:{name}")


def main() -> int:
    protocol = sys.stdout
    sys.stdout = sys.stderr  # anything printed by Django or a library must not reach the protocol
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.local")
    import django

    django.setup()
    from supervisor import childutils

    while True:
        headers, payload = childutils.listener.wait(sys.stdin, protocol)
        try:
            first_line = payload.split("\n", 1)[0]
            handle(headers.get("eventname", ""), childutils.get_headers(first_line))
        except Exception:  # the listener must keep listening
            logger.exception("process event not handled: %s", headers.get("eventname"))
        childutils.listener.ok(protocol)


if __name__ == "__main__":
    sys.exit(main())
