"""The whole gateway for a benchmark: alpacasim plus gunicorn with the production settings.

``gateway_stack()`` starts alpacasim (rate limit off, seed 1), writes a bench secrets file (the
example accounts, every rate limit and per-account upstream budget raised so the bench measures
the work and not a 429), migrates, syncs the accounts, mints a token, and runs gunicorn with
``opitios/gunicorn.conf.py`` and ``opitios.settings.production`` (file logging only, no console).

``companions=("worker", "beat", "listener", "flower")`` also starts those processes with the command
lines `make run` gives them (``opitios.supervisord_conf.commands``), on the same environment.
``stack_cpu(gw)`` reads the CPU every process of the stack has used so far (/proc), for CPU per order.

The database and cache are the process environment's: embedded (a fresh SQLite file, file cache,
filesystem broker) unless ``DATABASE_URL`` / ``REDIS_URL`` are set. All server output goes to
stderr, so a bench script's stdout carries only its JSON result.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.sim import SimServer, free_port  # noqa: E402

RAISED = "1000000/min"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# A fixed bench-only Fernet key: re-runs against the same PostgreSQL database can still decrypt
# the rows an earlier run stored. It protects nothing but the public demo credentials.
BENCH_FERNET_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"opitios-bench-only").digest()).decode()


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of per-request timings; the one every bench script uses."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its children still running (/proc; no psutil in the venv)."""
    total = 0.0
    pids = [pid]
    try:
        pids += [int(c) for t in os.listdir(f"/proc/{pid}/task")
                 for c in Path(f"/proc/{pid}/task/{t}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


@dataclass
class Gateway:
    base_url: str
    token: str
    sim: SimServer
    config: dict
    env: dict
    web: subprocess.Popen
    info: dict = field(default_factory=dict)
    companions: dict[str, subprocess.Popen] = field(default_factory=dict)


class PostgresBackends:
    """CPU seconds of every PostgreSQL backend of the bench database (not the sampler's own), the last
    reading of each kept: read every ``interval`` s from a thread, a backend that disconnects (a connection
    closed after an error, or past its CONN_MAX_AGE) loses at most that interval. Nothing without PostgreSQL."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval, self.seen = interval, {}
        self._url = os.environ.get("DATABASE_URL", "")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PostgresBackends:
        if self._url.startswith("postgres"):
            import psycopg

            self._conn = psycopg.connect(self._url, autocommit=True)
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._conn.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.read()

    def read(self) -> dict[int, float]:
        if self._thread is None:
            return {}
        with self._lock:
            pids = [row[0] for row in self._conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
            for pid in pids:
                cpu = cpu_seconds(pid)
                if cpu:
                    self.seen[pid] = cpu
            return dict(self.seen)


def _redis_cpu() -> float | None:
    """The Redis server's own CPU seconds (INFO cpu): a server other work may share, so an upper bound."""
    if not os.environ.get("REDIS_URL"):
        return None
    import redis

    info = redis.Redis.from_url(os.environ["REDIS_URL"]).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def stack_cpu(gw: Gateway, backends: PostgresBackends) -> dict:
    """CPU seconds used so far by each process of the stack: gunicorn (master and workers), alpacasim, each
    companion (with its pool children), the PostgreSQL backends by pid, Redis, and this process."""
    return {"gunicorn": cpu_seconds(gw.web.pid), "alpacasim": cpu_seconds(gw.sim.proc.pid),
            **{name: cpu_seconds(proc.pid) for name, proc in gw.companions.items()},
            "postgres_backends": backends.read(), "redis": _redis_cpu(), "client": time.process_time()}


def stack_cpu_per_unit(before: dict, after: dict, units: int) -> dict[str, float | None]:
    """Milliseconds of CPU per unit (order) of each process between two ``stack_cpu`` readings. A backend
    that connected in between counts whole."""
    out: dict[str, float | None] = {}
    for name, value in after.items():
        if name == "postgres_backends":
            value = sum(cpu - before[name].get(pid, 0.0) for pid, cpu in value.items())
        elif value is None or before.get(name) is None:
            out[name] = None
            continue
        else:
            value -= before[name]
        out[name] = round(value * 1000 / units, 3)
    out["total"] = round(sum(v for v in out.values() if v is not None), 3)
    return out


def configuration() -> dict:
    return {
        "database": "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite",
        "cache": "redis" if os.environ.get("REDIS_URL") else "file",
    }


@contextlib.contextmanager
def gateway_stack(*, workers: int | None = None, threads: int | None = None, permissions: str = "trading",
                  companions: tuple[str, ...] = (), sections: dict[str, dict] | None = None) -> Iterator[Gateway]:
    """``sections`` updates sections of the bench secrets file (e.g. ``{"market_data": {...}}``)."""
    tmp = Path(tempfile.mkdtemp(prefix="opitios-bench-"))
    sim = SimServer(seed=1, rate_limit=False).start()
    web = None
    others: dict[str, subprocess.Popen] = {}
    try:
        config = yaml.safe_load((ROOT / "secrets.example.yml").read_text())
        config["rate_limits"] = {k: RAISED for k in ("stock_quote", "quotes_batch", "stock_order", "option_order", "default")}
        for account in config["accounts"].values():
            account["rate_limit_per_minute"] = 1_000_000
        # the per-account order-rate check stays on (its cost is measured), at its highest allowed rate
        config.setdefault("trading", {})["max_orders_per_second"] = 10_000
        for name, values in (sections or {}).items():
            config.setdefault(name, {}).update(values)
        (tmp / "secrets.yml").write_text(yaml.safe_dump(config))
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "opitios.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "OPITIOS_JWT_SECRET_KEY": secrets.token_urlsafe(48),
            "OPITIOS_FERNET_KEYS": BENCH_FERNET_KEY,
            "OPITIOS_SECRETS": str(tmp / "secrets.yml"),
            "OPITIOS_VAR_DIR": str(tmp / "var"),
            "OPITIOS_LOG_DIR": str(tmp / "logs"),
            "ALPACA_PAPER_URL": sim.paper_url,
            "ALPACA_LIVE_URL": sim.live_url,
            "ALPACA_DATA_URL": sim.data_url,
        }
        if "DATABASE_URL" not in os.environ:
            env["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
        if workers is not None:
            env["WEB_CONCURRENCY"] = str(workers)
        if threads is not None:
            env["GUNICORN_THREADS"] = str(threads)
        py = sys.executable
        quiet = {"cwd": ROOT, "env": env, "check": True, "stdout": sys.stderr}
        subprocess.run([py, "manage.py", "migrate", "--noinput", "-v", "0"], **quiet)
        subprocess.run([py, "manage.py", "sync_accounts"], **quiet)
        if env["DATABASE_URL"].startswith("postgres"):
            # Statistics, as autovacuum keeps them in production: with it off (this machine's PostgreSQL), a reused
            # bench database is never analysed and the planner scans what grew over earlier runs.
            subprocess.run([py, "manage.py", "shell", "-c", "from django.db import connection; connection.cursor().execute('ANALYZE')"],
                           **quiet)
        token = subprocess.run(
            [py, "manage.py", "issue_token", "--user-id", "bench", "--account-id", "account_001", "--permissions", permissions,
             "--ttl", "7200"],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        ).stdout.strip()
        port = free_port()
        web = subprocess.Popen(
            [py, "-m", "gunicorn", "opitios.wsgi:application", "-c", "opitios/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT, env=env, stdout=sys.stderr,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60  # a loaded 2-core machine
        while True:
            try:
                if requests.get(f"{base}/api/v1/health", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            if web.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not become healthy")
            time.sleep(0.1)
        if companions:  # once gunicorn serves: their start-up would compete with its boot
            from opitios.supervisord_conf import commands

            argv = commands(py, {"sim": "0", "flower": str(free_port()), "flower_address": "127.0.0.1"})
            for name in companions:
                others[name] = subprocess.Popen(argv[name], cwd=ROOT, env=env, stdout=sys.stderr, stderr=sys.stderr)
        info = {
            **configuration(),
            "settings": "opitios.settings.production",
            "gunicorn": {"config": "opitios/gunicorn.conf.py", "WEB_CONCURRENCY": env.get("WEB_CONCURRENCY", "default"),
                         "GUNICORN_THREADS": env.get("GUNICORN_THREADS", "default")},
            "cpus": os.cpu_count(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
            "companions": list(companions),
        }
        yield Gateway(base, token, sim, config, env, web, info, others)
    finally:
        for proc in [*others.values(), *([web] if web is not None else [])]:
            proc.terminate()
        for proc in [*others.values(), *([web] if web is not None else [])]:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        sim.stop()
