"""Issue 12: deny by default. Walk every URL: each DRF view names its permissions itself, and every
view that is not deliberately public refuses an anonymous client."""
from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient
from rest_framework.views import APIView

from accounts import broker as broker_seam
from trading.permissions import MarketDataAccess

pytestmark = pytest.mark.django_db

PUBLIC = {"/api/v1/health", "/api/v1/live", "/api/v1/ready", "/api/v1/schema", "/api/v1/docs"}
SAMPLES = {"symbol": "AAPL", "underlying": "AAPL", "order_id": "00000000-0000-0000-0000-000000000001"}


def _routes(resolver: URLResolver, prefix: str = ""):
    for p in resolver.url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            yield from _routes(p, route)
        elif isinstance(p, URLPattern) and isinstance(getattr(p.callback, "cls", None), type) and issubclass(p.callback.cls, APIView):
            yield "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: SAMPLES[m.group(1)], route), p.callback.cls


def _declares_permissions(cls: type) -> bool:
    return any("permission_classes" in vars(k) or "get_permissions" in vars(k) for k in cls.__mro__ if k is not APIView
               and issubclass(k, APIView))


def _methods(cls: type) -> list[str]:
    return [m for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m)]


ROUTES = sorted(set(_routes(get_resolver())), key=lambda r: r[0])


def test_the_walk_finds_the_api():
    paths = {p for p, _ in ROUTES}
    assert {"/api/v1/stocks/order", "/api/v1/orders/bulk", "/api/v1/health/detailed", "/api/v1/admin/pool", "/api/v1/sell/control"} <= paths
    assert len(ROUTES) >= 20


@pytest.mark.parametrize(("path", "cls"), ROUTES, ids=[p for p, _ in ROUTES])
def test_every_drf_view_declares_its_permissions(path, cls):
    assert _declares_permissions(cls), f"{cls.__name__} ({path}) relies on the default permissions"


@pytest.mark.parametrize(("path", "cls"), [r for r in ROUTES if r[0] not in PUBLIC], ids=[p for p, _ in ROUTES if p not in PUBLIC])
def test_every_view_that_is_not_public_refuses_an_anonymous_client(path, cls, config_file):
    config_file.set("api", market_data_public=False)  # market data is public only when configured
    client = APIClient()
    for method in _methods(cls):
        r = getattr(client, method)(path, {}, format="json")
        assert r.status_code in (401, 403), (method, path, r.status_code, r.content[:200])
        assert r.json()["error"]["code"] in ("not_authenticated", "permission_denied")


@pytest.fixture
def fresh_pool():
    yield
    broker_seam.reset_pool()  # /ready builds this process's broker pool; do not leave an empty one behind


@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_public_views_open_themselves_explicitly(path, fresh_pool):
    cls = dict(ROUTES)[path]
    assert [p for p in cls.permission_classes if p is not AllowAny] == [] and cls.permission_classes
    assert APIClient().get(path).status_code in (200, 503)  # ready may say not ready; never 401/403


def test_market_data_is_public_only_when_configured(config_file):
    assert all(MarketDataAccess in cls.permission_classes for path, cls in ROUTES if "/quote" in path or "/bars" in path or "/chain" in path)
    config_file.set("api", market_data_public=False)
    assert APIClient().get("/api/v1/stocks/AAPL/quote").status_code == 401


def test_a_view_that_forgets_its_permissions_is_closed(rf):
    class Forgetful(APIView):
        def get(self, request):
            return None

    response = Forgetful.as_view()(rf.get("/api/v1/forgetful"))
    assert response.status_code == 401
    assert response.data["error"]["code"] == "not_authenticated"
