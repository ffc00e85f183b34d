"""Platform pages, under /console/t/<tenant_slug>/platform/ (platform admins only, declared per view)."""

from django.urls import path

from routing import console_views as views

app_name = "routing"

urlpatterns = [
    path("providers/", views.providers, name="providers"),
    path("providers/new/", views.provider_new, name="provider_new"),
    path("providers/<path:name>/", views.provider_edit, name="provider_edit"),
    path("deployments/", views.deployments, name="deployments"),
    path("deployments/new/", views.deployment_new, name="deployment_new"),
    path("deployments/<path:name>/", views.deployment_edit, name="deployment_edit"),
    path("routes/", views.routes, name="routes"),
    path("routes/new/", views.route_new, name="route_new"),
    path("routes/<path:alias>/", views.route_edit, name="route_edit"),
]
