from django.urls import path

from desk import views

urlpatterns = [
    path("", views.overview, name="desk-overview"),
    path("accounts/<str:account_id>/", views.account_page, name="desk-account"),
    path("latency/", views.latency, name="desk-latency"),
    path("traffic/", views.traffic, name="desk-traffic"),
    path("quotes/", views.quotes, name="desk-quotes"),
]
