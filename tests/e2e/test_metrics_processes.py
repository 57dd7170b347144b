"""Metrics across real processes: gunicorn with two workers answers /metrics for both (the
multiprocess directory), and a Celery worker serves its pool's samples on its own port."""
from __future__ import annotations

import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from opitios.auth import issue_token
from tests.helpers.processes import free_port

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "secrets.example.yml"


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def _throttled(stack) -> float:
    with urllib.request.urlopen(stack.url("/metrics"), timeout=10) as r:
        assert r.status == 200
        samples = _samples(r.read().decode())
    return samples.get(("opitios_throttled_requests_total", (("scope", "default"),)), 0.0)


def test_two_gunicorn_workers_add_up_and_the_worker_exports_its_own(stack_factory, tmp_path):
    secrets = yaml.safe_load(EXAMPLE.read_text())
    secrets["rate_limits"] = {"default": "1/min"}
    (tmp_path / "secrets.yml").write_text(yaml.safe_dump(secrets))
    worker_port = free_port()
    stack = stack_factory(processes=("web", "worker"), stop_timeout=30, env={  # 2 shared cores: a slow warm shutdown is no fault here
        "WEB_CONCURRENCY": "2", "OPITIOS_SECRETS": str(tmp_path / "secrets.yml"), "OPITIOS_WORKER_METRICS_PORT": str(worker_port),
    })
    web_dir = Path(stack.env["OPITIOS_VAR_DIR"]) / "prometheus" / "web"
    token = issue_token(user_id="metrics-e2e", permissions=["admin"])
    refused = 0
    lock = threading.Lock()

    def hit(_):
        nonlocal refused
        status, _ = stack.get("/api/v1/admin/pool", token=token)  # scope "default", 1/min: all but the first are 429
        with lock:
            refused += status == 429

    def both_workers_counted() -> bool:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(hit, range(16)))
        return len({p.name for p in web_dir.glob("counter_*.db")}) >= 2

    stack.wait_for(both_workers_counted, "both gunicorn workers to serve a throttled request", timeout=60)
    # every scrape, whichever worker answers it, sums both workers' files
    assert {_throttled(stack) for _ in range(6)} == {float(refused)}, stack.diagnostics()

    stack.call_task("debug.ping")
    with urllib.request.urlopen(f"http://127.0.0.1:{worker_port}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
    assert (Path(stack.env["OPITIOS_VAR_DIR"]) / "prometheus" / f"worker-{worker_port}").is_dir()
    stack.stop()
