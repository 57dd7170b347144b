"""`make run`: prepare, then become the supervisor (supervisord) of web, worker, beat and the rest.

Demo mode (no secrets.yml) adds alpacasim when the package is present; a Redis broker adds
Flower. Ports come from OPITIOS_WEB_PORT (8090), OPITIOS_SIM_PORT (8091) and
OPITIOS_FLOWER_PORT (5555); the web address from opitios.web_bind (loopback in demo mode,
GUNICORN_BIND overrides); /ws/market-data on OPITIOS_WS_PORT (8092), whose process
hosts the market-data hub on embedded defaults; with Redis the hub is its own process (docs/streaming.md).
A child that crashes is restarted with a backoff (opitios/supervisord_conf.py); Ctrl-C (SIGINT) or SIGTERM stops every child and then supervisord.
"""
import fcntl
import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path

from opitios.supervisord_conf import commands, render
from opitios.web_bind import browse_url, web_bind

BASE_DIR = Path(__file__).resolve().parent.parent
PY = sys.executable


def _manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=BASE_DIR, check=True)


def _banner(*, demo: bool, sim: bool, flower: bool, ports: dict[str, str], bind: str) -> str:
    web = browse_url(bind) or bind
    lines = [
        "",
        "Opitios is starting" + (" in DEMO mode (secrets.example.yml)" if demo else "") + ":",
        f"  Listening  {bind}" + ("   (every interface)" if bind.startswith(("0.0.0.0:", "[::]:")) else ""),
        f"  API docs   {web}/api/v1/docs",
        f"  Health     {web}/api/v1/health",
        f"  Streaming  ws://127.0.0.1:{ports['ws']}/ws/market-data",
        f"  Admin      {web}/admin/   (create a login: {PY} manage.py createsuperuser)",
    ]
    if flower:
        lines.append(f"  Flower     http://{ports['flower_address']}:{ports['flower']}/")
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
        "flower_address": os.environ.get("OPITIOS_FLOWER_ADDRESS", "127.0.0.1"),
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
    processes = ((["sim"] if sim else []) + ["web", "ws", "worker", "ticks", "beat", "listener"] + (["hub"] if hub else [])
                 + (["flower"] if flower else []))

    _manage("migrate", "--noinput", "--verbosity", "0")
    _manage("collectstatic", "--noinput", "--verbosity", "0")
    # Accounts from secrets.yml (secrets.example.yml in demo mode). The broker may not be up yet
    # (alpacasim starts below), so the worker detects paper/live once it is ready.
    _manage("sync_accounts", "--no-detect")
    os.environ["OPITIOS_DETECT_AT_START"] = "1"

    bind = web_bind(demo=demo)
    print(_banner(demo=demo, sim=sim, flower=flower, ports=ports, bind=bind), flush=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run_dir = Path(os.environ.get("OPITIOS_VAR_DIR", BASE_DIR / "var")) / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    conf = run_dir / "supervisord.conf"
    conf.write_text(render(programs={name: commands(PY, ports)[name] for name in processes}, base_dir=BASE_DIR, run_dir=run_dir))
    _append_only(1)
    _append_only(2)
    os.chdir(BASE_DIR)
    # Become supervisord: signals (Ctrl-C, SIGTERM) reach the supervisor itself, which stops every
    # child's process group. A Python parent waiting on it would be killed first and orphan them.
    os.execv(PY, [PY, "-m", "supervisor.supervisord", "-c", str(conf)])
    return 0  # not reached


def _append_only(fd: int) -> None:
    """supervisord reopens /dev/stdout for its children's output: when stdout is a file, every writer
    must append, or supervisord's own lines overwrite the children's."""
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
