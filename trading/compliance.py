"""The compliance landing page (/admin/compliance/) and its "verify now" action, inside the admin site. It
lives in ``trading``, the lowest layer that sees all it shows: accounts, order records and the audit chain.

Compliance officers may run "verify now": it only reads the chain (and appends the audited record of
the check), so it keeps them read-only on every record they oversee."""
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import selectors as account_selectors
from audit import selectors
from audit.charts import latency_chart
from audit.services import audit_chain_verify_now
from trading.models import OrderRecord

LATENCY_DAYS = 7
COMPLIANCE_PERMISSION = "audit.view_auditevent"


def compliance_dashboard(request):
    if not request.user.has_perm(COMPLIANCE_PERMISSION):
        raise PermissionDenied
    latency = selectors.order_latency_daily(OrderRecord, days=LATENCY_DAYS)
    orders = {"today": selectors.orders_today_by_outcome(OrderRecord), "latency": latency, "chart": latency_chart(latency)}
    context = {
        **admin.site.each_context(request),
        "title": "Compliance",
        "distribution": account_selectors.account_type_distribution(),
        "status": account_selectors.compliance_status(),
        "orders": orders,
        "latency_days": LATENCY_DAYS,
    }
    return TemplateResponse(request, "audit/compliance_dashboard.html", context)


@require_POST
def chain_verify_now(request):
    if not request.user.has_perm(COMPLIANCE_PERMISSION):
        raise PermissionDenied
    check = audit_chain_verify_now(actor_id=request.user.get_username())
    if check.ok:
        messages.success(request, f"Audit chain verified OK: {check.count} events, last seq {check.last_seq or 0}.")
    else:
        messages.error(request, f"Audit chain BROKEN at seq {check.first_broken_seq}: {check.reason}")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        target = reverse("compliance-dashboard")
    return redirect(target)


# Included by the root URLconf at admin/compliance/.
urlpatterns = [
    path("", admin.site.admin_view(compliance_dashboard), name="compliance-dashboard"),
    path("verify-chain/", admin.site.admin_view(chain_verify_now), name="compliance-verify-chain"),
]
