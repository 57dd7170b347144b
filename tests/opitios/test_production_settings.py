"""Production settings generate no secret: without the Django secret key, a JWT key or a
Fernet key the process refuses to start and says which one is missing; with all three it starts."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
COMPLETE = {
    "DJANGO_SECRET_KEY": "x" * 50,
    "OPITIOS_JWT_SECRET_KEY": "y" * 64,
    "OPITIOS_FERNET_KEYS": Fernet.generate_key().decode(),
}


def start(tmp_path, env: dict) -> subprocess.CompletedProcess:
    (tmp_path / "secrets.yml").write_text("accounts: {}\n")
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("PYTEST_", "DJANGO_", "OPITIOS_", "DATABASE_URL", "REDIS_URL"))}
    child = {**keep, "DJANGO_SETTINGS_MODULE": "opitios.settings.production", "OPITIOS_SECRETS": str(tmp_path / "secrets.yml"),
             "OPITIOS_VAR_DIR": str(tmp_path / "var"), "OPITIOS_LOG_DIR": str(tmp_path / "logs"), **env}
    return subprocess.run([sys.executable, "-c", "import django; django.setup(); print('started')"], cwd=ROOT, env=child,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("missing", sorted(COMPLETE))
def test_a_missing_secret_stops_the_start_and_is_named(tmp_path, missing):
    result = start(tmp_path, {k: v for k, v in COMPLETE.items() if k != missing})
    assert result.returncode != 0 and "started" not in result.stdout
    named = {"DJANGO_SECRET_KEY": "DJANGO_SECRET_KEY is not set", "OPITIOS_JWT_SECRET_KEY": "No JWT key configured",
             "OPITIOS_FERNET_KEYS": "OPITIOS_FERNET_KEYS is not set"}[missing]
    assert "ImproperlyConfigured" in result.stderr and named in result.stderr
    for secret in COMPLETE.values():
        assert secret not in result.stderr


def test_with_every_secret_it_starts(tmp_path):
    result = start(tmp_path, COMPLETE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"
