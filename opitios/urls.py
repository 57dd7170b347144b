from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from opitios import health
from opitios.errors import api_not_found
from opitios.metrics_view import metrics_view

admin.site.site_header = "Opitios compliance console"
admin.site.site_title = "Opitios console"
admin.site.index_title = "Console"
admin.site.enable_nav_sidebar = False  # the index lists every model; the lists need the width (1440 px)

api_v1 = [
    path("health", health.HealthView.as_view(), name="health"),
    path("live", health.LiveView.as_view(), name="live"),
    path("ready", health.ReadyView.as_view(), name="ready"),
    path("health/detailed", health.DetailedHealthView.as_view(), name="health-detailed"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("metrics", metrics_view, name="metrics"),
    path("admin/compliance/", include("trading.compliance")),
    path("desk/", include("desk.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/v1/", include("trading.urls")),  # the hot routes before the admin ones: Django tries patterns in order
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("risk.urls")),
    path("api/v1/", include("sellbot.urls")),
    path("api/v1/", include("audit.urls")),
    re_path(r"^api/", api_not_found),
]

handler400 = "opitios.errors.bad_request"
handler403 = "opitios.errors.permission_denied"
handler500 = "opitios.errors.server_error"
