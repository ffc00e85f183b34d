"""Compliance pages, under /console/t/<tenant_slug>/compliance/ (declared in gateway_site.console.access)."""

from django.urls import path

from audit import governance_views, views

app_name = "compliance"

urlpatterns = [
    path("", views.search, name="search"),
    path("records/<str:request_id>/", views.record, name="record"),
    path("export.<str:fmt>", views.export, name="export"),
    path("exports/<uuid:export_id>/manifest.json", views.export_manifest, name="export_manifest"),
    path("chain/", views.chain, name="chain"),
    path("policy/", governance_views.policy, name="policy"),
    path("holds/", governance_views.holds, name="holds"),
    path("holds/<int:hold_id>/release/", governance_views.hold_release, name="hold_release"),
    path("erasure/", governance_views.erasure, name="erasure"),
    path(
        "erasure/<int:erasure_id>/<str:decision>/",
        governance_views.erasure_decide,
        name="erasure_decide",
    ),
]
