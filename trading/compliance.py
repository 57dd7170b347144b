"""The compliance landing page (/admin/compliance/), inside the admin site."""
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

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
        "distribution": selectors.account_type_distribution(),
        "mismatches": selectors.mismatched_accounts(),
        "failures": selectors.detection_failures(),
        "orders": orders,
        "chain": selectors.chain_status(),
        "latency_days": LATENCY_DAYS,
    }
    return TemplateResponse(request, "audit/compliance_dashboard.html", context)
