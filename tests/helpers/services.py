"""Throwaway Redis and PostgreSQL servers that a test owns, on free ports on 127.0.0.1, so outage
tests can stop and restart them without touching the machine's shared servers.

    with OwnRedis() as redis, OwnPostgres(tmp_path) as pg:
        env = {"REDIS_URL": redis.url(db=0), "DATABASE_URL": pg.url("opitios")}
        redis.stop(); ...; redis.start()       # an outage and its recovery
        pg.restart(gap=2.0)                    # the server is down for ``gap`` seconds

Redis runs with no persistence (``--save "" --appendonly no``): a restart starts empty, as a
crashed cache would. PostgreSQL is a fresh ``initdb`` cluster (trust auth, fsync off) under a
temporary directory owned by the ``postgres`` user: initdb refuses to run as root, so when the
test runs as root the cluster's commands run through ``runuser -u postgres``.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers.processes import free_port


class ServiceError(RuntimeError):
    pass


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class OwnRedis:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def start(self, timeout: float = 10.0) -> OwnRedis:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"redis-server exited with {self.proc.returncode} on port {self.port}")
            if self.ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise ServiceError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.3, socket_timeout=0.3).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL)  # an outage, not a shutdown: no final save, connections drop
        proc.wait(timeout=10)

    def __enter__(self) -> OwnRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise ServiceError(f"{name} not found")
    return path


class OwnPostgres:
    """A PostgreSQL cluster of its own; ``url(name)`` creates the database ``name`` on first use."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir: Path | None = None
        self._as_postgres = os.geteuid() == 0
        self._created: set[str] = set()

    @staticmethod
    def available() -> bool:
        try:
            _pg_bin("initdb")
            _pg_bin("pg_ctl")
        except ServiceError:
            return False
        return True

    def _run(self, *command: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        if self._as_postgres:
            command = ("runuser", "-u", "postgres", "--", *command)
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise ServiceError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def init(self) -> OwnPostgres:
        self.dir = Path(tempfile.mkdtemp(prefix="opitios-pg-"))
        if self._as_postgres:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run(_pg_bin("initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        return self

    def start(self, timeout: float = 30.0) -> OwnPostgres:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-o", options, "-l", str(self.dir / "server.log"),
                  "-w", "-t", str(int(timeout)), "start", timeout=timeout + 5)
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.dir is None or not (self.dir / "data" / "postmaster.pid").exists():
            return
        self._run(_pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "-t", "30", "stop")

    def restart(self, *, gap: float = 0.0, mode: str = "fast") -> None:
        """Stop (terminating every connection), stay down ``gap`` seconds, start again."""
        self.stop(mode=mode)
        time.sleep(gap)
        self.start()

    def up(self) -> bool:
        return _port_open(self.port)

    def admin_url(self) -> str:
        return self.url("postgres", create=False)

    def url(self, name: str, *, create: bool = True) -> str:
        url = f"postgres://postgres@127.0.0.1:{self.port}/{name}"
        if create and name not in self._created and name != "postgres":
            import psycopg

            with psycopg.connect(self.url("postgres", create=False), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            self._created.add(name)
        return url

    def log(self) -> str:
        path = self.dir / "server.log" if self.dir else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    def destroy(self) -> None:
        try:
            self.stop(mode="immediate")
        finally:
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None

    def __enter__(self) -> OwnPostgres:
        self.init()
        try:
            return self.start()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc) -> None:
        self.destroy()
