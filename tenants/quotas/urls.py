"""Limits and budgets pages, under /console/t/<tenant_slug>/limits/ (declared in gateway_site.console.access)."""

from django.urls import path

from tenants.quotas import approval_views, views

app_name = "quotas"

urlpatterns = [
    path("", views.limits, name="limits"),
    path("rate-limits/", views.limit_save, name="limit_save"),
    path("budgets/", views.budget_save, name="budget_save"),
    path("<str:kind>/<int:rule_id>/delete/", views.rule_delete, name="rule_delete"),
    path("approvals/", approval_views.approvals_page, name="approvals"),
    path("approvals/rules/", approval_views.rule_save, name="approval_rule_save"),
    path(
        "approvals/rules/<int:approval_rule_id>/delete/",
        approval_views.rule_delete,
        name="approval_rule_delete",
    ),
    path("approvals/<str:approval_id>/decide/", approval_views.decide, name="approval_decide"),
]
