"""Console URLs: the frame's own pages and the tenants app's (keys, teams, members, the portal).
Tenant pages live under t/<tenant_slug>/; every view declares its roles (gateway_site.console.access)."""

from django.urls import include, path

from gateway_site.console.views import auth, tenant
from tenants import playground_views as playground
from tenants import portal_views as developer
from tenants import request_log_views as request_log
from tenants import views as admin

app_name = "console"

tenant_patterns = [
    path("", tenant.tenant_home, name="tenant_home"),
    path("keys/", developer.keys, name="keys"),
    path("keys/new/", developer.key_create, name="key_create"),
    path("keys/<int:key_id>/", developer.key_detail, name="key_detail"),
    path("keys/<int:key_id>/rotate/", developer.key_rotate, name="key_rotate"),
    path("keys/<int:key_id>/revoke/", developer.key_revoke, name="key_revoke"),
    path("quickstart/", developer.quickstart, name="quickstart"),
    path("playground/", playground.playground, name="playground"),
    path("playground/stream/", playground.playground_stream, name="playground_stream"),
    path("requests/", request_log.my_requests, name="my_requests"),
    path("requests/<str:request_id>/", request_log.my_request, name="my_request"),
    path("admin/teams/", admin.teams, name="admin_teams"),
    path("admin/teams/<int:team_id>/", admin.team_edit, name="admin_team_edit"),
    path("admin/members/", admin.members, name="admin_members"),
    path("admin/members/<int:membership_id>/", admin.member_edit, name="admin_member_edit"),
    path(
        "admin/members/<int:membership_id>/remove/", admin.member_remove, name="admin_member_remove"
    ),
    path("admin/keys/", admin.all_keys, name="admin_keys"),
    path("admin/models/", admin.tenant_models, name="admin_models"),
    path("admin/activity/", admin.activity, name="admin_activity"),
    path("admin/activity.csv", admin.activity_export, name="admin_activity_export"),
]

urlpatterns = [
    path("", auth.home, name="home"),
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("oidc/authenticate/", auth.oidc_start, name="oidc_start"),
    path("oidc/callback/", auth.oidc_callback, name="oidc_callback"),
    path("t/<slug:tenant_slug>/", include(tenant_patterns)),
]
