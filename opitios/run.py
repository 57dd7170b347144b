"""`make run`: prepare, then become the supervisor (honcho) of every process in the Procfile.

Demo mode (no secrets.yml) adds alpacasim when the package is present; a Redis broker adds
Flower. Ports come from OPITIOS_WEB_PORT (8090), OPITIOS_SIM_PORT (8091) and
OPITIOS_FLOWER_PORT (5555); /ws/market-data from OPITIOS_WS_PORT (8092), whose process hosts the
market-data hub on embedded defaults; with Redis the hub is its own process (docs/streaming.md). Ctrl-C (SIGINT) or SIGTERM makes honcho stop every child: SIGTERM
to each process group, SIGKILL after 5 seconds.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PY = sys.executable


def _manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=BASE_DIR, check=True)


def _banner(*, demo: bool, sim: bool, flower: bool, ports: dict[str, str]) -> str:
    web = f"http://127.0.0.1:{ports['web']}"
    lines = [
        "",
        "Opitios is starting" + (" in DEMO mode (secrets.example.yml)" if demo else "") + ":",
        f"  API docs   {web}/api/v1/docs",
        f"  Health     {web}/api/v1/health",
        f"  Streaming  ws://127.0.0.1:{ports['ws']}/ws/market-data",
        f"  Admin      {web}/admin/   (create a login: {PY} manage.py createsuperuser)",
    ]
    if flower:
        lines.append(f"  Flower     http://127.0.0.1:{ports['flower']}/")
    if sim:
        lines.append(f"  alpacasim  http://127.0.0.1:{ports['sim']}/_sim/state")
    lines += [
        f"  Token      {PY} manage.py issue_token --user-id me --account-id account_001 "
        "--permissions market_data,account_access,trading",
        "  Stop       Ctrl-C",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.local")
    ports = {
        "web": os.environ.setdefault("OPITIOS_WEB_PORT", "8090"),
        "sim": os.environ.setdefault("OPITIOS_SIM_PORT", "8091"),
        "flower": os.environ.setdefault("OPITIOS_FLOWER_PORT", "5555"),
        "ws": os.environ.setdefault("OPITIOS_WS_PORT", "8092"),
    }
    from opitios.config import config_path

    _, demo = config_path(BASE_DIR)
    sim = demo and importlib.util.find_spec("alpacasim") is not None
    if demo and not sim:
        print("make run: the alpacasim package is not present; starting without the simulator.", flush=True)
    if sim:
        # Demo accounts talk to the simulator this process starts (settings read these).
        sim_url = f"http://127.0.0.1:{ports['sim']}"
        os.environ.setdefault("ALPACA_PAPER_URL", f"{sim_url}/paper")
        os.environ.setdefault("ALPACA_LIVE_URL", f"{sim_url}/live")
        os.environ.setdefault("ALPACA_DATA_URL", sim_url)
    flower = bool(os.environ.get("REDIS_URL"))
    hub = bool(os.environ.get("REDIS_URL"))  # without Redis the ws process hosts the hub
    processes = (["sim"] if sim else []) + ["web", "ws", "worker", "beat"] + (["hub"] if hub else []) + (["flower"] if flower else [])

    _manage("migrate", "--noinput", "--verbosity", "0")
    _manage("collectstatic", "--noinput", "--verbosity", "0")
    # Accounts from secrets.yml (secrets.example.yml in demo mode). The broker may not be up yet
    # (alpacasim starts below), so the worker detects paper/live once it is ready.
    _manage("sync_accounts", "--no-detect")
    os.environ["OPITIOS_DETECT_AT_START"] = "1"

    print(_banner(demo=demo, sim=sim, flower=flower, ports=ports), flush=True)
    # The Procfile says `python`: make it this interpreter (the venv's), whatever PATH held.
    os.environ["PATH"] = f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    os.chdir(BASE_DIR)
    # Become honcho: signals (Ctrl-C, SIGTERM) reach the supervisor itself, which stops every
    # child's process group. A Python parent waiting on it would be killed first and orphan them.
    os.execv(PY, [PY, "-m", "honcho", "-f", "Procfile", "start", *processes])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
