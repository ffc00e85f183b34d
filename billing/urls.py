"""Finance pages, under /console/t/<tenant_slug>/finance/ (access declared on each view)."""

from django.urls import path

from billing import dashboard_views, price_views, views

app_name = "billing"

urlpatterns = [
    path("", views.finance, name="finance"),
    path("teams/<int:team_id>/", views.team_costs, name="team"),
    path("teams/<int:team_id>/requests/", views.user_requests, name="requests"),
    path("prices/", price_views.prices, name="prices"),
    path("dashboard/", dashboard_views.dashboard, name="dashboard"),
]
