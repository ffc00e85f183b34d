"""Routing quality, under /console/t/<tenant_slug>/routing-quality/."""

from django.urls import path

from routing.evaluations import views

app_name = "evaluations"

urlpatterns = [path("", views.scores, name="scores")]
