"""Compliance pages, under /console/t/<tenant_slug>/compliance/ (declared in gateway_site.console.access)."""

from django.urls import path

from audit import views

app_name = "compliance"

urlpatterns = [
    path("", views.search, name="search"),
    path("records/<str:request_id>/", views.record, name="record"),
    path("export.<str:fmt>", views.export, name="export"),
    path("exports/<uuid:export_id>/manifest.json", views.export_manifest, name="export_manifest"),
    path("chain/", views.chain, name="chain"),
]
