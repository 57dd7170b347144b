from django.urls import path

from accounts.views import PoolView

urlpatterns = [
    path("admin/pool", PoolView.as_view(), name="admin-pool"),
]
