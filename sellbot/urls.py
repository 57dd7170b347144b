from django.urls import path

from . import views

urlpatterns: list = [
    path("sell", views.SellStatusView.as_view(), name="sell-status"),
    path("sell/control", views.SellControlView.as_view(), name="sell-control"),
    path("sell/health", views.SellHealthView.as_view(), name="sell-health"),
]
