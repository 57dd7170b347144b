"""Issue 12: every status a route can return is in the OpenAPI schema."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from .conftest import client_for, token
from .test_default_deny import PUBLIC

pytestmark = pytest.mark.django_db

TRADING_TAGS = {"orders", "account", "market data"}


@pytest.fixture(scope="module")
def operations(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        schema = APIClient().get("/api/v1/schema?format=json").json()
    return [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()
            if method in ("get", "post", "put", "patch", "delete")]


def test_detailed_health_documents_and_answers_401_and_403(operations, config_file):
    documented = {m: set(op["responses"]) for p, m, op in operations if p == "/api/v1/health/detailed"}
    assert {"200", "401", "403"} <= documented["get"]
    assert APIClient().get("/api/v1/health/detailed").status_code == 401
    assert client_for(token(permissions=("account_access",))).get("/api/v1/health/detailed").status_code == 403


def test_every_route_that_needs_a_token_documents_401_and_403(operations):
    missing = [(m, p, sorted(op["responses"])) for p, m, op in operations if p not in PUBLIC and not {"401", "403"} <= set(op["responses"])]
    assert missing == []


def test_every_trading_route_documents_its_request_shape_refusals(operations):
    """They read account_id (or the order) from the body: malformed or oversized bodies are 400 and 413."""
    missing = [(m, p) for p, m, op in operations if set(op.get("tags", [])) & TRADING_TAGS and not {"400", "413"} <= set(op["responses"])]
    assert missing == []
