"""The address gunicorn binds, read back from gunicorn itself with the real opitios/gunicorn.conf.py:
loopback in demo mode (SPEC §2), every interface with a real secrets.yml, GUNICORN_BIND over both."""
import os
import re
import subprocess
import sys

import pytest

from opitios.web_bind import browse_url
from tests.helpers.stack import REPO_ROOT


def gunicorn_bind(tmp_path, **env: str) -> list[str]:
    child = {k: v for k, v in os.environ.items() if k not in ("GUNICORN_BIND", "OPITIOS_SECRETS", "OPITIOS_WEB_PORT")}
    child.update(OPITIOS_VAR_DIR=str(tmp_path / "var"), OPITIOS_LOG_DIR=str(tmp_path / "logs"), **env)
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "opitios.wsgi", "-c", "opitios/gunicorn.conf.py", "--print-config"],
        cwd=REPO_ROOT, env=child, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = re.search(r"^bind\s+=\s+\[(.*)\]$", done.stdout, re.MULTILINE)
    assert found, done.stdout
    return re.findall(r"'([^']*)'", found.group(1))


def real_secrets(tmp_path):
    path = tmp_path / "secrets.yml"
    path.write_text((REPO_ROOT / "secrets.example.yml").read_text())
    return str(path)


@pytest.mark.skipif((REPO_ROOT / "secrets.yml").exists(), reason="a local secrets.yml turns demo mode off")
def test_demo_mode_binds_loopback(tmp_path):
    assert gunicorn_bind(tmp_path, OPITIOS_WEB_PORT="18123") == ["127.0.0.1:18123"]


def test_a_real_secrets_file_binds_every_interface(tmp_path):
    assert gunicorn_bind(tmp_path, OPITIOS_SECRETS=real_secrets(tmp_path), OPITIOS_WEB_PORT="18124") == ["0.0.0.0:18124"]


def test_gunicorn_bind_overrides_demo_mode(tmp_path):
    assert gunicorn_bind(tmp_path, GUNICORN_BIND="192.0.2.10:9000") == ["192.0.2.10:9000"]


def test_banner_urls_for_a_bind():
    assert browse_url("127.0.0.1:8090") == "http://127.0.0.1:8090"
    assert browse_url("0.0.0.0:8090") == "http://127.0.0.1:8090"
    assert browse_url("unix:/run/opitios.sock") is None
