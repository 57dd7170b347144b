"""The compliance landing page (/admin/compliance/), inside the admin site. It lives in ``trading``, the
lowest layer that sees all it shows: accounts, order records and the audit chain."""
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path

from accounts import selectors as account_selectors
from audit import selectors
from audit.charts import latency_chart
from trading.models import OrderRecord

LATENCY_DAYS = 7


def compliance_dashboard(request):
    if not request.user.has_perm("audit.view_auditevent"):
        raise PermissionDenied
    latency = selectors.order_latency_daily(OrderRecord, days=LATENCY_DAYS)
    orders = {"today": selectors.orders_today_by_outcome(OrderRecord), "latency": latency, "chart": latency_chart(latency)}
    context = {
        **admin.site.each_context(request),
        "title": "Compliance",
        "distribution": account_selectors.account_type_distribution(),
        "mismatches": account_selectors.mismatched_accounts(),
        "failures": account_selectors.detection_failures(),
        "orders": orders,
        "chain": selectors.chain_status(),
        "latency_days": LATENCY_DAYS,
    }
    return TemplateResponse(request, "audit/compliance_dashboard.html", context)


# Included by the root URLconf at admin/compliance/.
urlpatterns = [path("", admin.site.admin_view(compliance_dashboard), name="compliance-dashboard")]
