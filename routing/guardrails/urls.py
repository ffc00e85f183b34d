"""Console pages for guardrails, under /console/t/<tenant_slug>/guardrails/ (gateway_site/urls.py)."""

from django.urls import path

from routing.guardrails import views

app_name = "guardrails"

urlpatterns = [
    path("", views.policy_list, name="list"),
    path("new/", views.policy_create, name="create"),
    path("dry-run/", views.policy_dry_run, name="dry_run"),
    path("review/", views.review_queue, name="review"),
    path("review/export/", views.review_export, name="review_export"),
    path("review/<str:request_id>/decide/", views.review_decide, name="review_decide"),
    path("p/<slug:name>/", views.policy_detail, name="detail"),
    path("p/<slug:name>/edit/", views.policy_edit, name="edit"),
    path("p/<slug:name>/attach/", views.policy_attach, name="attach"),
    path(
        "p/<slug:name>/attachments/<int:attachment_id>/detach/", views.policy_detach, name="detach"
    ),
]
