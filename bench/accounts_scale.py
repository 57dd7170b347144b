"""Accounts at scale: ``sync_accounts`` plus type detection for N accounts (target ≤ 10 s
for 1000), and a web worker ready to serve them (target ≤ 3 s), with that worker's RSS.

    python bench/accounts_scale.py            # 1000 accounts
    python bench/accounts_scale.py --smoke    # 20 accounts

Runs alpacasim with ``--accounts N`` (rate limit off), writes a secrets.yml for those accounts, and uses
a throwaway var/ and SQLite database (or DATABASE_URL when set). Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alpacasim.accounts import generated_credentials  # noqa: E402
from tests.helpers.sim import SimServer, free_port  # noqa: E402

PY = sys.executable


def write_secrets(path: Path, n: int) -> None:
    lines = ["trading:", "  balance_check_enabled: true", "accounts:"]
    for i in range(1, n + 1):
        key, secret = generated_credentials(i)
        lines += [f"  account_{i:04d}:", f"    api_key: {key}", f"    secret_key: {secret}", "    paper_trading: true", "    tier: standard"]
    path.write_text("\n".join(lines) + "\n")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true", help="20 accounts, a quick check that the bench works")
    args = parser.parse_args()
    n = 20 if args.smoke else args.accounts

    with tempfile.TemporaryDirectory(prefix="opitios-bench-") as tmp, SimServer(config=None, accounts=n, rate_limit=False, seed=1) as sim:
        tmp = Path(tmp)
        secrets = tmp / "secrets.yml"
        write_secrets(secrets, n)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "opitios.settings.local",
            "DJANGO_SECRET_KEY": "bench-" + "x" * 50,
            "DJANGO_DEBUG": "false",
            "OPITIOS_SECRETS": str(secrets),
            "OPITIOS_VAR_DIR": str(tmp / "var"),
            "OPITIOS_LOG_DIR": str(tmp / "logs"),
            "ALPACA_PAPER_URL": sim.paper_url,
            "ALPACA_LIVE_URL": sim.live_url,
            "ALPACA_DATA_URL": sim.data_url,
        }
        env.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'bench.sqlite3'}")
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        if "postgres" in env["DATABASE_URL"]:
            subprocess.run([PY, "manage.py", "shell", "-c", "from accounts.models import *; AccountTypeChange.objects.all().delete(); BalanceSnapshot.objects.all().delete(); AlpacaAccount.objects.all().delete()"], cwd=ROOT, env=env, check=True)

        started = time.perf_counter()
        out = subprocess.run([PY, "manage.py", "sync_accounts"], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
        sync_s = time.perf_counter() - started
        started = time.perf_counter()
        again = subprocess.run([PY, "manage.py", "sync_accounts", "--no-detect"], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
        resync_s = time.perf_counter() - started

        port = free_port()
        wenv = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1"}
        gunicorn = str(Path(PY).parent / "gunicorn")
        started = time.perf_counter()
        proc = subprocess.Popen([gunicorn, "opitios.wsgi", "-c", "opitios/gunicorn.conf.py"], cwd=ROOT, env=wenv,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        ready_s = None
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/ready", timeout=5) as r:
                        if r.status == 200:
                            ready_s = time.perf_counter() - started
                            break
                except OSError:
                    time.sleep(0.01)
            workers = children(proc.pid)
            worker_rss_mb = round(rss_kb(workers[0]) / 1024, 1) if workers else None
        finally:
            proc.terminate()
            proc.wait(timeout=20)

    result = {
        "accounts": n,
        "sync_and_detection_s": round(sync_s, 2),
        "sync_and_detection_target_s": 10,
        "resync_unchanged_s": round(resync_s, 2),
        "web_worker_ready_s": round(ready_s, 2) if ready_s else None,
        "web_worker_ready_target_s": 3,
        "web_worker_rss_mb": worker_rss_mb,
        "sync_output": out.strip().splitlines(),
        "resync_output": again.strip().splitlines(),
        "database": env["DATABASE_URL"].split(":", 1)[0],
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
