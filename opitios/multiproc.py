"""Where each kind of process keeps its Prometheus samples (docs/deployment.md, "Metrics").

prometheus-client picks its value store when it is first imported: in multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR`` set) every process writes its samples to files there and a scrape
adds them up. So this module imports nothing of prometheus-client, and ``use`` must run before
anything does: gunicorn.conf.py calls ``use`` for the web processes (and ``clean`` once, when the
master starts, not at each reload), opitios/celery.py ``prepare`` for a worker.
An operator's ``PROMETHEUS_MULTIPROC_DIR`` wins over the default under var/prometheus/.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def default_dir(kind: str) -> Path:
    base = Path(os.environ.get("OPITIOS_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
    return base / "prometheus" / kind


def use(kind: str) -> Path:
    """Point this process (and its children) at the sample directory of its kind."""
    path = Path(os.environ.get(ENV) or default_dir(kind))
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(path)
    return path


def clean() -> None:
    """Empty the directory, once per start of the kind's main process: files of a previous run
    would be added to this one's counters."""
    path = Path(os.environ[ENV])
    for entry in path.glob("*.db"):
        entry.unlink(missing_ok=True)


def prepare(kind: str) -> Path:
    path = use(kind)
    clean()
    return path


def enabled() -> bool:
    return bool(os.environ.get(ENV))
