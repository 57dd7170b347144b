"""The bench runner's failure handling and report building, without running any benchmark."""
from __future__ import annotations

import json
import sys

from bench.__main__ import figures, parse_output, run_script
from bench.figures import FIGURES, Figure
from bench.machine import masked


def test_parse_output_reads_the_last_line_or_a_trailing_indented_object():
    assert parse_output('starting\n{"a": 1}\n') == {"a": 1}
    assert parse_output("log line\n" + json.dumps({"a": {"b": 2}}, indent=2)) == {"a": {"b": 2}}
    assert parse_output("no json here\n") is None
    assert parse_output("") is None
    assert parse_output("[1, 2]\n") is None


def test_a_missing_script_is_an_error_not_a_crash():
    entry = run_script("no_such_script", smoke=True, timeout=5, env={})
    assert entry == {"status": "error", "error": "bench/no_such_script.py is not there (yet)"}


def test_a_crashing_script_is_an_error_with_its_stderr_tail():
    code = "import sys; print('partial'); sys.stderr.write('Traceback: boom\\n'); sys.exit(3)"
    entry = run_script("crash", smoke=True, timeout=30, env={}, command=[sys.executable, "-c", code])
    assert entry["status"] == "error"
    assert entry["returncode"] == 3
    assert "no JSON object" in entry["error"]
    assert "boom" in entry["stderr_tail"]


def test_a_script_that_hangs_is_stopped_and_reported():
    code = "import time; time.sleep(60)"
    entry = run_script("hang", smoke=True, timeout=1, env={}, command=[sys.executable, "-c", code])
    assert entry["status"] == "error"
    assert entry["error"] == "timed out after 1 s"
    assert entry["seconds"] < 30


def test_a_script_that_says_it_cannot_measure_is_an_error_with_its_reason():
    code = "import json; print(json.dumps({'error': 'set DATABASE_URL'})); raise SystemExit(2)"
    entry = run_script("pg_only", smoke=True, timeout=30, env={}, command=[sys.executable, "-c", code])
    assert entry["status"] == "error"
    assert entry["error"] == "set DATABASE_URL"
    assert entry["reported_by_script"] is True


def test_a_script_missing_its_target_still_reports_its_figures():
    code = "import json; print(json.dumps({'min_requests_per_s': 1500.0, 'ok': False})); raise SystemExit(1)"
    entry = run_script("sim_throughput", smoke=True, timeout=30, env={}, command=[sys.executable, "-c", code])
    assert entry["status"] == "ok"
    assert "exit 1" in entry["note"]
    row = next(r for r in figures({"sim_throughput": entry}) if r["key"] == "sim_rps")
    assert (row["value"], row["status"], row["target"]) == (1500.0, "miss", "≥ 2000 req/s")


def test_figures_pass_miss_info_and_error():
    scripts = {
        "order_overhead": {"status": "ok", "result": {"overhead_ms": {"p50": 3.0, "p95": 12.0, "p99": 20.0}}},
        "accounts_scale": {"status": "ok", "result": {"sync_and_detection_s": 4.0, "web_worker_ready_s": None}},
        "audit_write": {"status": "error", "error": "timed out after 120 s"},
        "sim_throughput": {"status": "ok", "result": {}},
    }
    rows = {r["key"]: r for r in figures(scripts)}
    assert len(rows) == len(FIGURES)
    assert rows["gateway_overhead_p50_ms"]["status"] == "pass"
    assert rows["gateway_overhead_p95_ms"]["status"] == "miss"
    assert rows["gateway_overhead_p99_ms"]["status"] == "info"
    assert rows["sync_and_detection_s"]["status"] == "pass"
    assert rows["web_worker_ready_s"]["status"] == "error"
    assert "None" in rows["web_worker_ready_s"]["error"]
    assert rows["audit_write_median_ms"]["error"] == "timed out after 120 s"
    assert rows["sim_rps"]["error"] == "sim_throughput printed no min_requests_per_s"
    assert rows["sweep_seconds"]["error"] == "not run"


def test_targets_read_as_written():
    assert Figure("x", "x", "s", ("x",), "ms", "<=", 5).verdict(5) == "pass"
    assert Figure("x", "x", "s", ("x",), "×", ">=", 0.5).verdict(0.49) == "miss"


def test_masked_hides_a_password():
    assert masked("postgres://u:secret@db:5432/x") == "postgres://u:***@db:5432/x"
    assert masked("redis://127.0.0.1:6379/8") == "redis://127.0.0.1:6379/8"
