from django.urls import path

from .views import TradingStateView

urlpatterns = [
    path("admin/trading-state", TradingStateView.as_view(), name="admin-trading-state"),
]
