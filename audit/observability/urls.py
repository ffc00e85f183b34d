"""Console pages of observability, under /console/t/<tenant_slug>/alerts/."""

from django.urls import path

from audit.observability import console_views, rule_views

app_name = "observability"

urlpatterns = [
    path("", console_views.alerts, name="alerts"),
    path("rules/", rule_views.rules, name="rules"),
]
