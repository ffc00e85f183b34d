"""Routing quality and task categories, under /console/t/<tenant_slug>/routing-quality/."""

from django.urls import path

from routing.evaluations import category_views, views

app_name = "evaluations"

urlpatterns = [
    path("", views.scores, name="scores"),
    path("categories/", category_views.categories, name="categories"),
    path("categories/<slug:name>/", category_views.category_edit, name="category_edit"),
]
