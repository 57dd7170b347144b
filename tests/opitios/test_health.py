"""Health endpoints (docs/operations.md, "Health") and the API docs."""
import pytest
from django.core.management import call_command

from opitios import health
from opitios.auth import issue_token
from tests.accounts.factories import AlpacaAccountFactory


@pytest.fixture
def enabled_account(db):
    """/ready needs at least one enabled account (docs/operations.md, "Health")."""
    return AlpacaAccountFactory(enabled=True)


def admin_headers():
    return {"HTTP_AUTHORIZATION": f"Bearer {issue_token(user_id='ops', permissions=['admin'])}"}


def test_health_is_public_and_cheap(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["time"]


def test_live_is_public(client):
    response = client.get("/api/v1/live")
    assert response.status_code == 200
    assert response.json()["status"] == "alive"


@pytest.mark.django_db
def test_ready_when_the_database_is_migrated(client, enabled_account):
    response = client.get("/api/v1/ready")
    assert response.status_code == 200, response.json()
    assert response.json() == {"status": "ready"}


@pytest.mark.django_db(transaction=True)
def test_not_ready_while_migrations_are_missing(client):
    call_command("migrate", "accounts", "zero", verbosity=0)
    try:
        response = client.get("/api/v1/ready")
        assert response.status_code == 503
        assert response.json()["status"] == "not_ready"
        assert "migrations are not applied" in response.json()["problems"]
    finally:
        call_command("migrate", verbosity=0)
    AlpacaAccountFactory(enabled=True)
    assert client.get("/api/v1/ready").status_code == 200


@pytest.mark.django_db
def test_registered_readiness_checks_gate_ready(client, monkeypatch):
    monkeypatch.setitem(health._readiness, "accounts", lambda: "no account is enabled")
    monkeypatch.setitem(health._readiness, "fine", lambda: None)
    response = client.get("/api/v1/ready")
    assert response.status_code == 503
    assert response.json()["problems"] == ["no account is enabled"]


@pytest.mark.django_db
def test_a_readiness_check_that_raises_reports_not_ready(client, monkeypatch, enabled_account):
    monkeypatch.setitem(health._readiness, "broken", lambda: 1 / 0)
    response = client.get("/api/v1/ready")
    assert response.status_code == 503
    assert response.json()["problems"] == ["broken check failed (ZeroDivisionError)"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"HTTP_AUTHORIZATION": f"Bearer {issue_token(user_id='t', permissions=['trading', 'bulk_trading'])}"}, 403)],
)
def test_detailed_health_requires_the_admin_claim(client, headers, status):
    assert client.get("/api/v1/health/detailed", **headers).status_code == status


@pytest.mark.django_db
def test_detailed_health_reports_every_subsystem(client, settings, enabled_account):
    response = client.get("/api/v1/health/detailed", **admin_headers())
    assert response.status_code == 200
    body = response.json()
    checks = body["checks"]
    assert {"config", "database", "cache", "redis", "broker", "workers"} <= set(checks)
    for section in checks.values():
        assert section["status"] in ("ok", "degraded", "unhealthy")
        assert section["latency_ms"] >= 0
    assert checks["database"]["status"] == "ok"
    assert checks["cache"]["status"] == "ok"
    assert checks["broker"]["status"] == "ok"
    assert checks["broker"]["transport"] == ("redis" if settings.REDIS_URL else "filesystem")
    assert checks["redis"] == {"status": "ok", "configured": bool(settings.REDIS_URL), "latency_ms": checks["redis"]["latency_ms"]}
    # no worker runs in the unit suite: the gateway still serves, so that is degraded, not down
    assert checks["workers"]["status"] == "degraded" and checks["workers"]["workers"] == []
    assert checks["config"]["status"] == "ok" and checks["config"]["config_errors"] == []
    assert body["status"] == "degraded"


@pytest.mark.django_db
def test_detailed_status_is_the_worst_section(client, monkeypatch):
    monkeypatch.setattr(health, "_sections", {"a": lambda: {"status": "ok"}, "b": lambda: {"status": "ok"}})
    assert client.get("/api/v1/health/detailed", **admin_headers()).json()["status"] == "healthy"
    health.register_section("c", lambda: {"status": "degraded"})
    assert client.get("/api/v1/health/detailed", **admin_headers()).json()["status"] == "degraded"
    health.register_section("d", lambda: 1 / 0)  # a broken check reports unhealthy, never a 500
    body = client.get("/api/v1/health/detailed", **admin_headers()).json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["d"]["status"] == "unhealthy" and body["checks"]["d"]["error"] == "ZeroDivisionError"


@pytest.mark.django_db
def test_config_errors_show_in_detailed_health(client, monkeypatch, tmp_path):
    from opitios import config as config_module

    path = tmp_path / "secrets.yml"
    path.write_text("trading:\n  routing_strategy: fastest\naccounts:\n  acc_1:\n    api_key: PKX0000000000000001\n")
    monkeypatch.setenv("OPITIOS_SECRETS", str(path))
    monkeypatch.setattr(config_module, "_cache", {})
    monkeypatch.setattr(health, "_sections", {"config": health.check_config})
    body = client.get("/api/v1/health/detailed", **admin_headers()).json()
    section = body["checks"]["config"]
    assert section["status"] == "degraded" and body["status"] == "degraded"
    assert any(e.startswith("trading.routing_strategy:") for e in section["config_errors"])
    assert "accounts.acc_1.secret_key" in section["account_errors"]["acc_1"]


def test_schema_is_openapi_3(client):
    response = client.get("/api/v1/schema", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/health" in schema["paths"]
    assert "/api/v1/health/detailed" in schema["paths"]


def test_docs_serve_swagger_ui_from_local_static_files(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn.jsdelivr.net" not in html
