"""Where each kind of process keeps its Prometheus samples (docs/deployment.md, "Metrics").

prometheus-client picks its value store when it is first imported: in multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR`` set) every process writes its samples to files there and a scrape
adds them up. So this module imports nothing of prometheus-client, and ``prepare`` must run before
anything does: gunicorn.conf.py calls it for the web processes, opitios/celery.py for a worker.
An operator's ``PROMETHEUS_MULTIPROC_DIR`` wins over the default under var/prometheus/.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def default_dir(kind: str) -> Path:
    base = Path(os.environ.get("OPITIOS_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
    return base / "prometheus" / kind


def prepare(kind: str) -> Path:
    """Point this process (and its children) at an empty sample directory of its own kind.

    Emptied at every start: files of a previous run would be added to this one's counters."""
    path = Path(os.environ.get(ENV) or default_dir(kind))
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(path)
    return path


def enabled() -> bool:
    return bool(os.environ.get(ENV))
