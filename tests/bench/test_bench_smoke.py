"""`python -m bench --smoke` runs every benchmark script with a handful of requests and writes the three
artefacts. No figure is asserted: speed is measured by `make bench`, not by the suite."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.figures import FIGURES, SCRIPTS
from bench.report import ORDER_CHART, SWEEP_CHART
from bench.wrk import wrk_path

ROOT = Path(__file__).resolve().parents[2]
# One CI pass, the PostgreSQL/Redis one: the benchmarks are about the production configuration (their
# audit_write script needs PostgreSQL), and the embedded pass is the fresh-clone `make test`, which must
# stay quick and steady on a busy machine; this run is its heaviest minute.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(600)
def test_smoke_run_writes_json_markdown_and_charts(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=560)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    report = json.loads((tmp_path / "latest.json").read_text())
    assert report["configuration"]["mode"] == "smoke"
    assert report["configuration"]["embedded_defaults"] is not bool(os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))
    assert report["machine"]["cores"] >= 1 and report["machine"]["ram_gb"] > 0 and report["machine"]["cpu_model"]
    assert len(report["load_average"]["start"]) == len(report["load_average"]["end"]) == 3
    for name in ("python", "django", "celery", "alpaca-py"):
        assert report["versions"][name], name
    assert bool(report["versions"]["postgresql_server"]) is bool(os.environ.get("DATABASE_URL"))
    assert bool(report["versions"]["redis_server"]) is bool(os.environ.get("REDIS_URL"))
    assert len(report["git"]["commit"] or "") == 40
    assert [f["key"] for f in report["figures"]] == [f.key for f in FIGURES]
    for row in report["figures"]:
        assert row["status"] in {"pass", "miss", "info", "error"}, row
        assert (row["value"] is None) is (row["status"] == "error"), row

    # Every script that is there runs: ok, or it says itself why it cannot measure here (no crash, no timeout).
    for name in SCRIPTS:
        entry = report["scripts"][name]
        if not (ROOT / "bench" / f"{name}.py").exists():
            assert entry["status"] == "error" and "not there" in entry["error"]
            continue
        assert entry["status"] == "ok" or entry.get("reported_by_script"), (name, entry)
    expect_ok = {"order_overhead", "accounts_scale", "memory"} | ({"sim_throughput"} if wrk_path() else set())
    if os.environ.get("DATABASE_URL"):
        expect_ok.add("audit_write")
    for name in expect_ok:
        assert report["scripts"][name]["status"] == "ok", (name, report["scripts"][name])

    markdown = (tmp_path / "latest.md").read_text()
    assert "| figure | target | measured | result |" in markdown
    assert "How to read this" in markdown
    for f in FIGURES:
        assert f"| {f.label} | {f.target_text()} |" in markdown
    for chart in (ORDER_CHART, SWEEP_CHART):
        assert f"]({chart})" in markdown
        data = (tmp_path / chart).read_bytes()
        assert data.startswith(PNG) and len(data) > 2000, chart
