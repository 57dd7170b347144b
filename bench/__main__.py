"""`make bench`: run every benchmark script under bench/ and write one report.

    python -m bench                  # full run, writes bench/results/latest.{json,md} and the PNG charts
    python -m bench --smoke          # a handful of requests per script, report under bench/results/smoke/
    python -m bench --only memory,audit_write --out /tmp/report

Each script listed in bench/figures.py runs as a subprocess (``python -m bench.<name> [--smoke]``) and prints one JSON object as its last
stdout output. A missing script, a failure or a timeout becomes an "error" in the report with the stderr tail;
the run goes on. With DATABASE_URL set, each script gets its own throwaway PostgreSQL database created next to
it and dropped afterwards (so a benchmark never touches the data of the database named); REDIS_URL is passed
through. Without them the scripts use embedded defaults (SQLite, filesystem broker) and the report says so.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import machine, report
from bench.figures import FIGURES, HELPERS, SCRIPTS, lookup
from bench.wrk import wrk_path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
# Per-script wall-clock bounds (seconds); the whole full run stays under 25 minutes (desk_pages seeds 100,000
# records; scale_out boots two stacks; order_overhead took 182 s at load average 12 with the worker, beat and Flower).
TIMEOUT_FULL = {"sim_throughput": 90, "sim_streams": 60, "audit_write": 120, "order_overhead": 240, "quote_throughput": 120,
                "scale_out": 180, "accounts_scale": 150, "memory": 240, "sell_sweep": 240, "desk_pages": 300,
                "lifecycle": 120, "tick_exit": 240, "hub_fanout": 240}
TIMEOUT_SMOKE = 90
# Smoke bounds longer than TIMEOUT_SMOKE: scale_out boots two gunicorns after migrating (a minute on a busy 2-core host).
TIMEOUT_SMOKE_FOR = {"scale_out": 150, "hub_fanout": 150}
BUDGET_FULL, BUDGET_SMOKE = 1500, 480


def timeout_for(name: str, *, smoke: bool) -> int:
    return TIMEOUT_SMOKE_FOR.get(name, TIMEOUT_SMOKE) if smoke else TIMEOUT_FULL.get(name, 120)


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def ensure_wrk() -> str | None:
    """wrk is a Debian package; install it like .ci/run does when missing and we are root."""
    if wrk_path():
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "wrk is not installed and this user cannot apt-get it: the HTTP load figures will be errors"
    say("installing wrk (apt-get install -y wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, check=False)
    return None if wrk_path() else "apt-get could not install wrk: the HTTP load figures will be errors"


def unlisted() -> list[str]:
    """Scripts under bench/ the runner does not run (profiling tools and the like); the report lists them so a
    new benchmark is not forgotten: add it to SCRIPTS and its figures to FIGURES in bench/figures.py."""
    return sorted(p.stem for p in BENCH.glob("*.py")
                  if p.stem not in HELPERS and p.stem not in SCRIPTS and "__main__" in p.read_text(errors="replace"))


def parse_output(stdout: str) -> dict | None:
    """The last JSON object on stdout: the last line, or a multi-line (indented) object ending the output."""
    lines = stdout.rstrip().splitlines()
    if not lines:
        return None
    try:
        value = json.loads(lines[-1])
        return value if isinstance(value, dict) else None
    except ValueError:
        pass
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("{"):
            try:
                value = json.loads("\n".join(lines[i:]))
                return value if isinstance(value, dict) else None
            except ValueError:
                return None
    return None


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT first, so a script's finally blocks stop its servers; then SIGKILL to its process group."""
    for sig, wait in ((signal.SIGINT, 20), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_script(name: str, *, smoke: bool, timeout: float, env: dict[str, str], command: list[str] | None = None) -> dict:
    """Run one script and return its entry: status "ok" with its JSON, or "error" with why and the stderr tail."""
    if command is None:
        if not (BENCH / f"{name}.py").exists():
            return {"status": "error", "error": f"bench/{name}.py is not there (yet)"}
        command = [sys.executable, "-m", f"bench.{name}", *(["--smoke"] if smoke else [])]
    database = None
    if env.get("DATABASE_URL"):
        from tests.helpers.stack import TempPostgresDatabase

        database = TempPostgresDatabase(env["DATABASE_URL"])
        env = {**env, "DATABASE_URL": database.url}
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _stop(proc)
        stdout, stderr = proc.communicate()
    finally:
        if database is not None:
            try:
                database.drop()
            except Exception as exc:  # noqa: BLE001 - a leftover database must not lose the run's figures
                say(f"could not drop {database.name}: {exc}")
    seconds = round(time.perf_counter() - started, 1)
    entry: dict = {"command": " ".join(["python", *command[1:]]), "seconds": seconds, "returncode": proc.returncode}
    result = parse_output(stdout)
    tail = "\n".join(stderr.strip().splitlines()[-25:])
    if timed_out:
        entry.update(status="error", error=f"timed out after {timeout:.0f} s", stderr_tail=tail)
    elif result is None:
        entry.update(status="error", error=f"exit {proc.returncode}, no JSON object on stdout", stderr_tail=tail,
                     stdout_tail=stdout.strip()[-500:])
    elif "error" in result and len(result) <= 2:
        # the script itself says why it cannot measure here (e.g. a PostgreSQL-only figure on SQLite)
        entry.update(status="error", error=str(result["error"]), reported_by_script=True, stderr_tail=tail)
    else:
        entry.update(status="ok", result=result)
        if proc.returncode != 0:
            entry["note"] = f"exit {proc.returncode} (the script's own verdict; the figures below are what counts)"
    if smoke and entry["status"] == "ok":
        entry["stderr_tail"] = tail or None
    return entry


def figures(scripts: dict[str, dict]) -> list[dict]:
    rows = []
    for f in FIGURES:
        row = {"key": f.key, "label": f.label, "script": f.script, "unit": f.unit, "target": f.target_text(),
               "target_value": f.target, "op": f.op, "value": None}
        s = scripts.get(f.script) or {"status": "error", "error": "not run"}
        if s["status"] != "ok":
            row.update(status="error", error=s["error"])
        else:
            try:
                value = lookup(s["result"], f.path)
            except KeyError as exc:
                row.update(status="error", error=f"{f.script} printed no {exc.args[0]}")
            else:
                if isinstance(value, int | float) and not isinstance(value, bool):
                    row.update(value=value, status=f.verdict(value))
                else:
                    row.update(status="error", error=f"{f.script}: {'.'.join(f.path)} is {value!r}")
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="a handful of requests per script: proves the scripts run")
    ap.add_argument("--out", type=Path, help="report directory (default bench/results, or bench/results/smoke with --smoke)")
    ap.add_argument("--only", help="comma-separated script names")
    args = ap.parse_args(argv)
    out = args.out or (BENCH / "results" / ("smoke" if args.smoke else ""))
    out.mkdir(parents=True, exist_ok=True)

    started_at, t0 = datetime.now(UTC), time.perf_counter()
    load_start = machine.load_average()
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    notes = []
    if note := ensure_wrk():
        notes.append(note)
        say(note)
    try:
        versions = machine.versions(database_url, redis_url)
    except Exception as exc:  # noqa: BLE001 - say which service is unreachable, then stop
        say(f"cannot reach the database or Redis named by DATABASE_URL / REDIS_URL: {exc}")
        return 2
    database = (f"PostgreSQL {versions['postgresql_server']} at {machine.masked(database_url)} "
                "(a throwaway database per script, dropped after)") if database_url else \
        "embedded defaults: SQLite per script (DATABASE_URL not set; audit_write needs PostgreSQL and will be an error)"
    broker = f"Redis {versions['redis_server']} at {machine.masked(redis_url)}" if redis_url else \
        "embedded defaults: filesystem broker and file cache (REDIS_URL not set)"
    say(f"{'smoke' if args.smoke else 'full'} run; database: {database}")
    say(f"broker and cache: {broker}")

    names = list(SCRIPTS)
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        names = [n for n in names if n in wanted] + sorted(wanted - set(names))
    # each script chooses its own Django settings; the runner's caller (e.g. pytest) must not choose for it
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONUNBUFFERED"] = "1"
    budget = BUDGET_SMOKE if args.smoke else BUDGET_FULL
    scripts: dict[str, dict] = {}
    for name in names:
        left = budget - (time.perf_counter() - t0)
        limit = min(timeout_for(name, smoke=args.smoke), left)
        if limit < 10:
            scripts[name] = {"status": "error", "error": f"not run: the run's {budget} s budget was used up"}
            continue
        say(f"{name} ...")
        scripts[name] = run_script(name, smoke=args.smoke, timeout=limit, env=env)
        s = scripts[name]
        say(f"{name}: {s['status']} in {s.get('seconds', 0)} s" + (f" ({s['error']})" if s["status"] != "ok" else ""))

    rows = figures(scripts)
    data = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - t0, 1),
        "machine": machine.machine(),
        "load_average": {"start": load_start, "end": machine.load_average()},
        "versions": versions,
        "git": machine.git_state(),
        "configuration": {
            "mode": "smoke" if args.smoke else "full",
            "database": database,
            "redis": broker,
            "embedded_defaults": not (database_url and redis_url),
            "scripts": names,
            "scripts_not_run": unlisted(),
            "timeouts_s": {n: timeout_for(n, smoke=args.smoke) for n in names},
            "notes": notes,
        },
        "figures": rows,
        "scripts": scripts,
    }
    report.write_json(out / "latest.json", data)
    report.write_markdown(out / "latest.md", data)
    order, sweep = scripts.get("order_overhead", {}), scripts.get("sell_sweep", {})
    report.order_chart(out / report.ORDER_CHART, order.get("result"), order.get("error"))
    report.sweep_chart(out / report.SWEEP_CHART, sweep.get("result"), sweep.get("error"))

    say(f"report: {out / 'latest.md'}")
    for r in rows:
        value = "–" if r["value"] is None else r["value"]
        say(f"  {r['status']:5} {r['label']}: {value} {r['unit']} (target {r['target']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
