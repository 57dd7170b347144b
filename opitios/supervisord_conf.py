"""The supervisord configuration `make run` (opitios/run.py) starts.

supervisord restarts a child that exits unexpectedly (a SIGKILL from the OOM killer, a Celery worker
that dies on a Redis outage) and logs it, instead of stopping the whole system as honcho did. A child
that dies again within ``startsecs`` of its start waits 1 s, 2 s, 3 s ... before the next try (its
backoff); after ``startretries`` failed starts in a row it is left FATAL and supervisord logs it.
On SIGINT/SIGTERM supervisord stops every child (SIGTERM to its process group, SIGKILL after
``stopwaitsecs``) and exits.
"""
from __future__ import annotations

import os
import pwd
import shlex
import sys
from pathlib import Path

from opitios.process_events import EVENTS, LISTENER_NAME

# Seconds a child must stay up to count as started, and failed starts in a row before giving up.
START_SECONDS = 3
START_RETRIES = 20
# Longer than each process's own graceful bound: gunicorn's GUNICORN_GRACEFUL_TIMEOUT (20 s) and the
# worker's warm shutdown. Beat and Flower stop in a second on a quiet host, but took over 10 s on a
# 2-core host at load 15 (beat 21 s): a SIGKILL there only loses beat's schedule sync.
STOP_WAIT_SECONDS = {"web": 25, "worker": 30, "ticks": 30}
DEFAULT_STOP_WAIT_SECONDS = 30


def commands(py: str, ports: dict[str, str]) -> dict[str, list[str]]:
    """Every process `make run` may start, by name."""
    return {
        "sim": [py, "-m", "alpacasim", "--host", "127.0.0.1", "--port", ports["sim"], "--config", "alpacasim/demo.yml"],
        "web": [py, "-m", "gunicorn", "opitios.wsgi", "-c", "opitios/gunicorn.conf.py"],
        "worker": [py, "-m", "celery", "-A", "opitios", "worker", "-l", "INFO", "-n", "worker@%h"],
        # Tick-driven exits only (docs/streaming.md): never queued behind the sweep's checks.
        "ticks": [py, "-m", "celery", "-A", "opitios", "worker", "-l", "INFO", "-Q", "ticks", "-n", "ticks@%h"],
        "beat": [py, "-m", "celery", "-A", "opitios", "beat", "-l", "INFO"],
        "ws": [py, "-m", "streaming.serve"],  # /ws/market-data; on embedded defaults it hosts the hub too
        "hub": [py, "manage.py", "run_hub"],  # with Redis: the hub (leader-locked) as its own process
        # The trade-updates listener: one shard (LIFECYCLE_SHARD_INDEX / _COUNT), docs/operations.md.
        "listener": [py, "manage.py", "listen_trade_updates"],
        "flower": [py, "-m", "celery", "-A", "opitios", "flower", f"--port={ports['flower']}", f"--address={ports['flower_address']}"],
    }


def _quote(argv: list[str]) -> str:
    # supervisord expands %(name)s in commands: a literal % is written %%.
    return " ".join(shlex.quote(a) for a in argv).replace("%", "%%")


def render(*, programs: dict[str, list[str]], base_dir: Path, run_dir: Path) -> str:
    lines = [
        "[supervisord]",
        "nodaemon=true",
        # Run as whoever started `make run` (as root, naming root avoids supervisord's CRIT warning).
        f"user={pwd.getpwuid(os.getuid()).pw_name}",  # the real uid, not $USER: never a switch of user
        f"logfile={run_dir / 'supervisord.log'}",
        "logfile_maxbytes=10MB",
        "logfile_backups=3",
        f"pidfile={run_dir / 'supervisord.pid'}",
        f"childlogdir={run_dir}",
        "loglevel=info",
        "",
    ]
    for name, argv in programs.items():
        lines += [
            f"[program:{name}]",
            f"command={_quote(argv)}",
            f"directory={base_dir}",
            "autostart=true",
            "autorestart=true",
            f"startsecs={START_SECONDS}",
            f"startretries={START_RETRIES}",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT_SECONDS.get(name, DEFAULT_STOP_WAIT_SECONDS)}",
            # The stop reaches pool children and gunicorn workers too; a crash restart leaves them
            # to notice their parent is gone (they do, within a second or two).
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            # Children write through supervisord to the terminal `make run` was started from.
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
            "",
        ]
    # One group: Ctrl-C stops every child at once, not one after the other.
    lines += ["[group:opitios]", f"programs={','.join(programs)}", ""]
    # Restarts alert a human (opitios/process_events.py); its stdout is the event protocol.
    listener = [sys.executable, "-m", "opitios.process_events"]
    lines += [
        f"[eventlistener:{LISTENER_NAME}]",
        f"command={_quote(listener)}",
        f"directory={base_dir}",
        f"events={EVENTS}",
        "autostart=true",
        "autorestart=true",
        "stderr_logfile=/dev/stdout",
        "stderr_logfile_maxbytes=0",
        "",
    ]
    return "\n".join(lines)
