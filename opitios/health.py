"""Health endpoints (docs/operations.md, "Health").

``/health`` and ``/live`` are cheap; ``/ready`` checks what serving needs; ``/health/detailed``
(admin) runs every registered section. Apps add sections with ``register_section``; the
readiness of their own state with ``register_readiness``.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from opitios.permissions import IsAdmin
from opitios.serializers import ErrorResponseSerializer

logger = logging.getLogger("opitios.health")

OK, DEGRADED, UNHEALTHY = "ok", "degraded", "unhealthy"
_RANK = {OK: 0, DEGRADED: 1, UNHEALTHY: 2}
OVERALL = {OK: "healthy", DEGRADED: "degraded", UNHEALTHY: "unhealthy"}

Section = Callable[[], dict]
_sections: dict[str, Section] = {}
_readiness: dict[str, Callable[[], str | None]] = {}


def register_section(name: str, check: Section) -> None:
    """``check()`` returns a dict with ``status`` in ok/degraded/unhealthy plus details."""
    _sections[name] = check


def register_readiness(name: str, check: Callable[[], str | None]) -> None:
    """``check()`` returns None when ready, else the reason it is not."""
    _readiness[name] = check


def _timed(check: Section) -> dict:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:  # a broken check reports, it never breaks health
        logger.exception("health check failed")
        result = {"status": UNHEALTHY, "error": exc.__class__.__name__}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def check_database() -> dict:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": OK, "vendor": connections[DEFAULT_DB_ALIAS].vendor}


def check_cache() -> dict:
    key = "health:probe"
    try:
        cache.set(key, "1", 10)
        ok = cache.get(key) == "1"
    except Exception as exc:
        logger.error("cache unavailable: %s", exc.__class__.__name__)
        return {"status": DEGRADED, "backend": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1], "error": exc.__class__.__name__}
    return {"status": OK if ok else DEGRADED, "backend": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]}


def check_redis() -> dict:
    if not settings.REDIS_URL:
        return {"status": OK, "configured": False}
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5).ping()
    except Exception as exc:
        logger.error("redis unavailable: %s", exc.__class__.__name__)
        return {"status": DEGRADED, "configured": True, "error": exc.__class__.__name__}
    return {"status": OK, "configured": True}


def check_broker() -> dict:
    from opitios.celery import app

    transport = settings.CELERY_BROKER_URL.split("://", 1)[0]
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=1)
    except Exception as exc:
        # Degraded, not unhealthy: the API still serves quotes and orders; what stops is background
        # work (balance refresh, sell-bot sweeps), which resumes when the broker is back.
        logger.error("celery broker unavailable: %s", exc.__class__.__name__)
        return {"status": DEGRADED, "transport": transport, "error": exc.__class__.__name__}
    return {"status": OK, "transport": transport}


def check_workers() -> dict:
    from opitios.celery import app

    try:
        replies = app.control.ping(timeout=1.0) or []
    except Exception as exc:
        return {"status": DEGRADED, "workers": [], "error": exc.__class__.__name__}
    names = sorted(name for reply in replies for name in reply)
    return {"status": OK if names else DEGRADED, "workers": names, "count": len(names)}


def check_config() -> dict:
    """secrets.yml as it reads now: invalid values fell back to defaults, broken accounts were skipped."""
    from opitios.config import current_config

    config = current_config()
    problems = bool(config.config_errors or config.account_errors)
    return {
        "status": DEGRADED if problems else OK,
        "source": str(config.source) if config.source else None,
        "demo": config.demo,
        "config_errors": list(config.config_errors),
        "account_errors": dict(config.account_errors),
    }


for _name, _check in (
    ("config", check_config),
    ("database", check_database),
    ("cache", check_cache),
    ("redis", check_redis),
    ("broker", check_broker),
    ("workers", check_workers),
):
    register_section(_name, _check)


def detailed_report() -> dict:
    sections = {name: _timed(check) for name, check in _sections.items()}
    worst = max((s.get("status", UNHEALTHY) for s in sections.values()), key=lambda s: _RANK.get(s, 2), default=OK)
    return {"status": OVERALL.get(worst, "unhealthy"), "time": timezone.now().isoformat(), "checks": sections}


def readiness_problems() -> list[str]:
    problems = []
    try:
        connection = connections[DEFAULT_DB_ALIAS]
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            problems.append("migrations are not applied")
    except Exception as exc:
        return [f"database unreachable ({exc.__class__.__name__})"]
    for name, check in _readiness.items():
        try:
            reason = check()
        except Exception as exc:
            reason = f"{name} check failed ({exc.__class__.__name__})"
        if reason:
            problems.append(reason)
    return problems


_status = inline_serializer("HealthStatus", {"status": serializers.CharField(), "time": serializers.DateTimeField()})


class HealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]  # public: load balancers and orchestrators probe without a token

    @extend_schema(responses={200: _status}, tags=["health"], summary="Cheap liveness and time")
    def get(self, request):
        return Response({"status": "ok", "time": timezone.now().isoformat()})


class LiveView(HealthView):
    @extend_schema(responses={200: _status}, tags=["health"], summary="The process is alive")
    def get(self, request):
        return Response({"status": "alive", "time": timezone.now().isoformat()})


class ReadyView(HealthView):
    @extend_schema(
        responses={
            200: inline_serializer("Ready", {"status": serializers.CharField()}),
            503: inline_serializer("NotReady", {"status": serializers.CharField(), "problems": serializers.ListField(child=serializers.CharField())}),
        },
        tags=["health"],
        summary="Ready to serve: database reachable, migrations applied, an account enabled",
    )
    def get(self, request):
        problems = readiness_problems()
        if problems:
            return Response({"status": "not_ready", "problems": problems}, status=503)
        return Response({"status": "ready"})


class DetailedHealthView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        responses={
            200: inline_serializer("DetailedHealth", {"status": serializers.CharField(), "time": serializers.DateTimeField(), "checks": serializers.DictField()}),
            401: OpenApiResponse(ErrorResponseSerializer, description="Missing or invalid token (not_authenticated, invalid_token)."),
            403: OpenApiResponse(ErrorResponseSerializer, description="The token lacks the admin permission (permission_denied)."),
        },
        tags=["health"],
        summary="Every subsystem's state (admin)",
    )
    def get(self, request):
        return Response(detailed_report())
