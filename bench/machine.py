"""What a benchmark ran on: machine, versions, git commit, and the services it used (credentials masked)."""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.wrk import wrk_version

ROOT = Path(__file__).resolve().parent.parent


def masked(url: str | None) -> str | None:
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def _first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def machine() -> dict:
    mem_kb = _first("/proc/meminfo", "MemTotal")
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "hostname": platform.node(),
        "os": platform.platform(),
        "cpu_model": _first("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "ram_gb": round(int(mem_kb.split()[0]) / 1024 / 1024, 1) if mem_kb else None,
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def postgres_version(url: str) -> str:
    """Asked of the server's maintenance database: the named one need not exist, since every
    script works in a throwaway database created next to it."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    with psycopg.connect(urlunsplit(urlsplit(url)._replace(path="/postgres")), connect_timeout=5) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def redis_version(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return client.info("server")["redis_version"]
    finally:
        client.close()


def versions(database_url: str | None, redis_url: str | None) -> dict:
    out = {"python": platform.python_version()}
    for dist in ("Django", "djangorestframework", "celery", "alpaca-py", "gunicorn", "psycopg", "redis", "matplotlib"):
        out[dist.lower()] = _version(dist)
    out["wrk"] = wrk_version()
    out["postgresql_server"] = postgres_version(database_url) if database_url else None
    out["redis_server"] = redis_version(redis_url) if redis_url else None
    return out


def git_state() -> dict:
    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain")
    return {
        "commit": commit,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(status) if status is not None else None,
        "changed_files": len(status.splitlines()) if status else 0,
    }
