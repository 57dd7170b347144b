"""A whole-stack harness: the real processes (gunicorn, Celery worker and beat, optionally Flower)
as subprocesses with an isolated environment, for every test under tests/e2e/.

    with Stack(tmp_path, beat_interval=1, env={"ALPACA_PAPER_URL": sim.paper_url}) as stack:
        status, body = stack.get("/api/v1/health")
        assert stack.call_task("debug.ping") == "pong"

Isolation: its own OPITIOS_VAR_DIR and OPITIOS_LOG_DIR under the tmp dir (so its own SQLite
file, filesystem broker, file cache and generated secrets), and with DATABASE_URL set, a fresh
PostgreSQL database ``<base>_e2e_<random>`` dropped at stop. REDIS_URL passes through.
Processes run with the settings `make run` uses (opitios.settings.local) and the test
process's JWT key, so ``opitios.auth.issue_token`` mints tokens the stack accepts.

Several of a kind: ``processes=("web", "web2", "worker", "worker2", "hub", "hub2", "listener", "listener2", ...)``;
each web gets its own port (``stack.ports[name]``; ``request(..., web="web2")``) and metrics directory, each worker
its own Celery node name (``node_name("worker2")``); a second hub or listener stands by for the lock or lease.
Each process runs in its own session; its output goes to ``<tmp>/out/<name>.log``, shown by
``diagnostics()`` in assertion messages. ``stop()`` sends SIGTERM to every main process,
SIGKILL to its process group after ``stop_timeout``, and fails if any process (or a descendant) is left.
``kill(name, sig)`` and ``restart(name)`` take one process down (a crash, a redeploy) and bring it back;
``wait_for`` fails when a process exits unasked, not when the test killed it.
Background work is observed through the worker's task lines in the app log: take ``mark = stack.log_mark()``,
then wait on ``stack.tasks_done("sellbot.sweep", since=mark)``: only tasks received after the mark count, so
"nothing happened" is asserted after something that could have acted did run, never after a sleep.
Fixture: ``stack_factory`` (import it in a conftest) builds stacks stopped at teardown.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.helpers.processes import Proc, alive, describe, free_port, kill_all, process_tree, session_members, wait_gone

REPO_ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable

# A worker's warm shutdown lets its running task finish, which may take up to that task's time limit
# (sellbot.check_account 50 s, CELERY_TASK_TIME_LIMIT 90 s); only a process past that ignored SIGTERM.
# Production allows the same (deploy/systemd: TimeoutStopSec=120 for the workers).
STOP_TIMEOUT = 95.0


class StackError(AssertionError):
    pass


def _port_open(port: int | None) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.2)
        return port is not None and s.connect_ex(("127.0.0.1", port)) == 0


# Celery's worker lines: "Task <name>[<id>] received", "... succeeded in 0.01s: <result>", "... retry: Retry in 0.3s: ...",
# "... raised unexpected: ...". A retry is received again under the same id, so an id's last line says where it stands.
# A message past its expiry is dropped by the worker that receives it ("Discarding revoked task: <name>[<id>]"):
# it is finished too, as "discarded" (e.g. a killed sweep's checks reaching a worker restarted after their expiry).
_TASK_LINE = re.compile(r"(?:Task |Discarding revoked task: )(?P<name>[\w.-]+)\[(?P<id>[0-9a-f-]+)\]"
                        r"(?: (?P<event>received|succeeded|retry|raised)|(?P<discarded>))(?P<rest>[^\n]*)\n")


class TaskLine(NamedTuple):
    """A task's last line so far: its name, the event (received, succeeded, retry, raised) and the rest."""

    name: str
    event: str
    rest: str


class TempPostgresDatabase:
    """``<base>_e2e_<random>`` next to the database of ``base_url``; dropped by ``drop()``."""

    def __init__(self, base_url: str) -> None:
        import psycopg

        self._psycopg = psycopg
        parts = urlsplit(base_url)
        base = parts.path.lstrip("/") or "postgres"
        self.name = f"{base}_e2e_{secrets.token_hex(4)}"
        self._admin_url = urlunsplit(parts._replace(path="/postgres"))
        self.url = urlunsplit(parts._replace(path=f"/{self.name}"))
        with psycopg.connect(self._admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        with self._psycopg.connect(self._admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def stack_environment(root: Path, *, env: dict[str, str] | None = None) -> tuple[dict[str, str], TempPostgresDatabase | None]:
    """The isolated environment of a stack (or of `make run`) rooted at ``root``."""
    from django.conf import settings

    child = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_SETTINGS_MODULE"))}
    child.update(
        DJANGO_SETTINGS_MODULE="opitios.settings.local",
        OPITIOS_VAR_DIR=str(root / "var"),
        OPITIOS_LOG_DIR=str(root / "logs"),
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        PYTHONUNBUFFERED="1",
    )
    jwt = settings.SIMPLE_JWT
    if jwt["ALGORITHM"].startswith("HS") and jwt["SIGNING_KEY"]:
        child["OPITIOS_JWT_SECRET_KEY"] = jwt["SIGNING_KEY"]
    database = None
    if os.environ.get("DATABASE_URL"):
        database = TempPostgresDatabase(os.environ["DATABASE_URL"])
        child["DATABASE_URL"] = database.url
    child.update(env or {})
    return child, database


class Stack:
    PROCESSES = ("web", "worker", "beat")

    def __init__(
        self,
        root: Path,
        *,
        processes: tuple[str, ...] = PROCESSES,
        env: dict[str, str] | None = None,
        beat_interval: float | None = None,
        stop_timeout: float = STOP_TIMEOUT,
        start_timeout: float = 60.0,
    ) -> None:
        self.root = Path(root)
        self.out_dir = self.root / "out"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.processes = processes
        self.extra_env = dict(env or {})
        if beat_interval:
            self.extra_env["OPITIOS_BEAT_TEST_INTERVAL"] = str(beat_interval)
        self.stop_timeout = stop_timeout
        self.start_timeout = start_timeout
        self.node = f"e2e-{secrets.token_hex(3)}"
        self.web_port: int | None = None  # the port of "web"; every web process's in ``ports``
        self.ports: dict[str, int] = {}
        self.flower_port: int | None = None
        self.ws_port: int | None = None
        self.env: dict[str, str] = {}
        self._own_env: dict[str, dict[str, str]] = {}  # per process: its port, its metrics directory
        self.database: TempPostgresDatabase | None = None
        self._procs: dict[str, subprocess.Popen] = {}
        self._killed: set[str] = set()  # taken down by kill(): not a failure until restarted
        self._members: set[Proc] = set()
        self._celery = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> Stack:
        self.env, self.database = stack_environment(self.root, env=self.extra_env)
        try:
            self.manage("migrate", "--noinput")
            # Orders are refused on accounts never detected: detect now when the stack names a broker
            # (alpacasim is up); without one, the worker's beat detection is the only way.
            self.manage("sync_accounts", *(() if "ALPACA_PAPER_URL" in self.env else ("--no-detect",)))
            for name in self.processes:
                self._spawn(name)
            self._wait_ready()
        except BaseException:
            self.stop(check=False)
            raise
        return self

    def _command(self, name: str) -> list[str]:
        # web, web2, ...: gunicorns on ports of their own, each with its own metrics directory (the
        # master empties it at start: two on one directory would wipe each other's samples)
        if name.startswith("web"):
            port = self.ports[name] = free_port()
            if name == "web":
                self.web_port = port
            own = self._own_env[name] = {"OPITIOS_WEB_PORT": str(port), "GUNICORN_BIND": f"127.0.0.1:{port}"}
            if name != "web":
                own["PROMETHEUS_MULTIPROC_DIR"] = str(self.root / "var" / "prometheus" / name)
            self.env.setdefault("WEB_CONCURRENCY", "1")
            return [PY, "-m", "gunicorn", "opitios.wsgi", "-c", "opitios/gunicorn.conf.py"]
        if name.startswith("worker"):  # worker, worker2, ...: one Celery node each
            return [PY, "-m", "celery", "-A", "opitios", "worker", "-l", "INFO", "-n", f"{self.node_prefix(name)}@%h"]  # pool size: settings
        if name == "ticks":  # the tick-driven exits' own worker (docs/streaming.md)
            return [PY, "-m", "celery", "-A", "opitios", "worker", "-l", "INFO", "-Q", "ticks", "-n", f"{self.node_prefix(name)}@%h"]
        if name == "beat":
            return [PY, "-m", "celery", "-A", "opitios", "beat", "-l", "INFO", "--pidfile", str(self.root / "beat.pid")]
        if name == "ws":  # /ws/market-data (and the hub itself on embedded defaults)
            self.ws_port = free_port()
            self.env["OPITIOS_WS_PORT"] = str(self.ws_port)
            return [PY, "-m", "streaming.serve"]
        if name.startswith("hub"):  # with Redis: hub, hub2, ... compete for the leader lock
            return [PY, "manage.py", "run_hub"]
        if name.startswith("listener"):  # with Redis: listener, listener2, ... compete for the shard's lease
            return [PY, "manage.py", "listen_trade_updates"]
        if name == "flower":
            self.flower_port = free_port()
            return [PY, "-m", "celery", "-A", "opitios", "flower", f"--port={self.flower_port}", "--address=127.0.0.1"]
        raise ValueError(f"unknown process {name!r}")

    def _spawn(self, name: str) -> None:
        command = self._command(name)
        out = open(self.out_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._procs[name] = subprocess.Popen(
            command, cwd=REPO_ROOT, env={**self.env, **self._own_env.get(name, {})}, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        out.close()  # the child holds its own descriptor

    def _wait_ready(self, names: tuple[str, ...] | None = None) -> None:
        checks: dict[str, Callable[[], bool]] = {
            "beat": lambda: "beat: Starting" in self.output("beat"),
            "listener": lambda: "trade-updates shard 0/1 lease taken" in self.app_log(),
            "flower": lambda: self._http(f"http://127.0.0.1:{self.flower_port}/healthcheck", timeout=1)[0] == 200,
            "ws": lambda: _port_open(self.ws_port),
        }

        def ready(n: str) -> bool:
            if n.startswith("web"):
                return self.get("/api/v1/health", timeout=1, web=n)[0] == 200
            if n.startswith("worker") or n == "ticks":
                return self.node_name(n) in self.ping_workers()
            return checks.get(n, lambda: True)()  # a standby (hub2, listener2) has nothing to show

        names = names or self.processes
        self.wait_for(lambda: all(ready(n) for n in names), f"{', '.join(names)} to be ready", self.start_timeout)

    def kill(self, name: str, sig: int = signal.SIGKILL, *, timeout: float | None = None) -> int:
        """Send ``sig`` to one process and wait for it to exit; returns its exit code.

        SIGKILL goes to the process group (the main process and its children die at once, as in a
        crash); any other signal to the main process only, as ``stop()`` sends it. A process that
        outlives ``timeout`` (default ``stop_timeout``) is killed and the call fails."""
        proc = self._procs[name]
        self._members |= session_members(proc.pid) | process_tree(proc.pid)
        self._killed.add(name)
        try:
            if sig == signal.SIGKILL:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(timeout=timeout or self.stop_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
            raise StackError(f"{name} ignored signal {sig} for {timeout or self.stop_timeout}s; killed\n{self.diagnostics()}") from None

    def restart(self, name: str) -> None:
        """Stop one process (SIGTERM, if it still runs), start it again and wait until it is ready."""
        if self._procs[name].poll() is None:
            self.kill(name, signal.SIGTERM)
        self._spawn(name)
        self._killed.discard(name)
        self._wait_ready((name,))

    def stop(self, *, check: bool = True) -> None:
        """SIGTERM every process group, SIGKILL after the bound; then fail if anything is left."""
        for proc in self._procs.values():
            self._members |= session_members(proc.pid) | process_tree(proc.pid)
        # SIGTERM to each main process only (systemd's KillMode=mixed): gunicorn's master and
        # Celery's worker shut their own children down; a SIGTERM reaching Celery's pool
        # children directly can wedge the worker's warm shutdown. SIGKILL goes to the group.
        for proc in reversed(list(self._procs.values())):
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        problems = []
        deadline = time.monotonic() + self.stop_timeout
        for name, proc in self._procs.items():
            if name in self._killed:
                continue
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                problems.append(f"{name} ignored SIGTERM for {self.stop_timeout}s; killed")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        left = wait_gone(self._members, timeout=max(0.5, deadline - time.monotonic()))
        if left:
            problems.append(f"orphan processes after stop:\n{describe(left)}")
            kill_all(left)
        if self._celery is not None:
            self._celery.close()
            self._celery = None
        if self.database is not None:
            self.database.drop()
            self.database = None
        if check and problems:
            raise StackError("; ".join(problems) + "\n" + self.diagnostics())

    def __enter__(self) -> Stack:
        """A stack on servers a test owns is stopped inside their ``with`` (stack_factory's teardown
        would stop it only after they are gone): ``with OwnRedis() as r, ...: with stack_factory(...) as stack:``."""
        return self if self._procs else self.start()

    def __exit__(self, exc_type, *exc) -> None:
        self.stop(check=exc_type is None)

    def running(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self._procs.items()}

    def pids(self) -> set[Proc]:
        found: set[Proc] = set()
        for proc in self._procs.values():
            found |= session_members(proc.pid)
        return alive(found)

    # --- observing --------------------------------------------------------------------------
    def output(self, name: str) -> str:
        path = self.out_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def app_log(self) -> str:
        path = self.root / "logs" / "app" / "opitios.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def error_log(self) -> str:
        path = self.root / "logs" / "errors" / "errors.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_mark(self) -> int:
        """A point in the app log: ``tasks(since=mark)`` sees only the tasks the worker received after it."""
        return len(self.app_log())

    def tasks(self, *, since: int = 0) -> dict[str, TaskLine]:
        """Every task the worker received after ``since`` (``log_mark()``), by id, with its last line so far.
        A task received after the mark started after it: what it did reflects the state at the mark."""
        received: dict[str, TaskLine] = {}
        for m in _TASK_LINE.finditer(self.app_log(), since):
            event = m["event"] or "discarded"
            if event == "received" or m["id"] in received:
                received[m["id"]] = TaskLine(m["name"], event, m["rest"])
        return received

    def tasks_done(self, name: str, *, since: int) -> list[TaskLine]:
        """The ``name`` tasks received after ``since`` that have finished (succeeded, raised or discarded)."""
        return [t for t in self.tasks(since=since).values() if t.name == name and t.event in ("succeeded", "raised", "discarded")]

    def diagnostics(self, tail: int = 4000) -> str:
        parts = [f"--- {name} (running={self.running().get(name)}) ---\n{self.output(name)[-tail:]}" for name in self.processes]
        parts.append(f"--- logs/app/opitios.log ---\n{self.app_log()[-tail:]}")
        parts.append(f"--- logs/errors/errors.log ---\n{self.error_log()[-tail:]}")
        return "\n".join(parts)

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, up in self.running().items() if not up and n not in self._killed]
            if dead:
                raise StackError(f"{', '.join(dead)} exited while waiting for {what}\n{self.diagnostics()}")
            try:
                if predicate():
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise StackError(f"timed out after {timeout}s waiting for {what}\n{self.diagnostics()}")

    # --- talking to it -------------------------------------------------------------------------
    def manage(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [PY, "manage.py", *args], cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise StackError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def url(self, path: str, *, web: str = "web") -> str:
        return f"http://127.0.0.1:{self.ports[web]}{path}"

    @staticmethod
    def _http(url: str, *, method: str = "GET", body: dict | None = None, token: str | None = None, timeout: float = 10.0):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def request(self, method: str, path: str, *, body: dict | None = None, token: str | None = None, timeout: float = 10.0,
                web: str = "web"):
        """(status, parsed JSON or raw bytes, headers), from the web process ``web``."""
        status, raw, headers = self._http(self.url(path, web=web), method=method, body=body, token=token, timeout=timeout)
        try:
            return status, json.loads(raw), headers
        except ValueError:
            return status, raw, headers

    def get(self, path: str, *, token: str | None = None, timeout: float = 10.0, web: str = "web"):
        status, body, _ = self.request("GET", path, token=token, timeout=timeout, web=web)
        return status, body

    def flower_get(self, path: str, *, timeout: float = 10.0):
        """(status, parsed JSON or raw bytes) of Flower's HTTP API (``processes`` must include "flower")."""
        status, raw, _ = self._http(f"http://127.0.0.1:{self.flower_port}{path}", timeout=timeout)
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw

    def celery(self):
        """A Celery client on the stack's own broker and result backend (read from its settings)."""
        if self._celery is None:
            from celery import Celery

            # The transport too: on embedded defaults it is opitios.filesystem_transport, whose writes are atomic;
            # kombu's own filesystem transport creates the file before writing it, and a worker that takes the
            # empty file dies on it (seen with one core busy).
            keys = ["CELERY_BROKER_URL", "CELERY_BROKER_TRANSPORT", "CELERY_BROKER_TRANSPORT_OPTIONS", "CELERY_RESULT_BACKEND"]
            code = f"from django.conf import settings; import json; print(json.dumps({{k: getattr(settings, k, None) for k in {keys!r}}}))"
            conf = json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])
            app = Celery(f"client-{self.node}", set_as_current=False)
            app.conf.update(
                broker_url=conf["CELERY_BROKER_URL"],
                broker_transport=conf["CELERY_BROKER_TRANSPORT"],
                broker_transport_options=conf["CELERY_BROKER_TRANSPORT_OPTIONS"] or {},
                result_backend=conf["CELERY_RESULT_BACKEND"],
                task_serializer="json",
                result_serializer="json",
                accept_content=["json"],
            )
            self._celery = app
        return self._celery

    def node_prefix(self, worker: str = "worker") -> str:
        return self.node if worker == "worker" else f"{self.node}-{worker}"

    def node_name(self, worker: str = "worker") -> str:
        """The Celery node name of the worker process ``worker`` (worker, worker2, ...)."""
        import socket

        return f"{self.node_prefix(worker)}@{socket.gethostname()}"

    def ping_workers(self, timeout: float = 1.0) -> list[str]:
        replies = self.celery().control.ping(timeout=timeout) or []
        return [name for reply in replies for name in reply]

    def call_task(self, name: str, *args, timeout: float = 15.0, **kwargs):
        result = self.celery().send_task(name, args=args, kwargs=kwargs)
        try:
            return result.get(timeout=timeout)
        except Exception as exc:
            raise StackError(f"task {name} failed: {exc!r}\n{self.diagnostics()}") from exc


@pytest.fixture
def stack_factory(tmp_path):
    """``stack_factory(**Stack kwargs)`` starts a stack under tmp_path; all are stopped at teardown."""
    stacks: list[Stack] = []

    def make(**kwargs) -> Stack:
        stack = Stack(tmp_path / f"stack{len(stacks)}", **kwargs)
        stacks.append(stack)
        return stack.start()

    yield make
    for stack in stacks:
        stack.stop()
