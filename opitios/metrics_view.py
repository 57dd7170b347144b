"""``GET /metrics``: the Prometheus exposition, never public (docs/deployment.md, "Metrics").

With ``metrics.token`` (or OPITIOS_METRICS_TOKEN) configured, a scrape must send
``Authorization: Bearer <token>``, from any address. Without one, only loopback may scrape
(REMOTE_ADDR 127.0.0.0/8 or ::1). A plain Django view: DRF's JWT auth and throttles do not apply.
"""
from __future__ import annotations

import hmac
import ipaddress

from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from opitios import metrics
from opitios.config import current_config
from opitios.errors import error_json_response


def _loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def scrape_refusal(request) -> JsonResponse | None:
    token = current_config().metrics.token
    if token:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode()):
            return None
        response = error_json_response("not_authenticated", "A bearer token is required to scrape /metrics.")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if _loopback(request.META.get("REMOTE_ADDR", "")):
        return None
    return error_json_response("permission_denied", "No metrics.token is configured: only loopback may scrape /metrics.")


@require_GET
def metrics_view(request) -> HttpResponse:
    refusal = scrape_refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
