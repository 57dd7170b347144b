"""The address gunicorn binds (opitios/gunicorn.conf.py) and `make run` prints.

Demo mode listens on loopback only: its accounts use published keys (SPEC §2). GUNICORN_BIND
overrides the whole address; otherwise OPITIOS_WEB_PORT (default 8090) on 127.0.0.1 in demo
mode and 0.0.0.0 with a real secrets.yml.
"""
from __future__ import annotations

import os
from collections.abc import Mapping


def web_bind(*, demo: bool, environ: Mapping[str, str] = os.environ) -> str:
    explicit = environ.get("GUNICORN_BIND", "").strip()
    if explicit:
        return explicit
    host = "127.0.0.1" if demo else "0.0.0.0"
    return f"{host}:{environ.get('OPITIOS_WEB_PORT', '8090')}"


def browse_url(bind: str) -> str | None:
    """An http URL a browser on this host can open for ``bind`` (None for a unix socket)."""
    if bind.startswith(("unix:", "fd://")):
        return None
    host, _, port = bind.rpartition(":")
    if host in ("0.0.0.0", "", "[::]", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"
