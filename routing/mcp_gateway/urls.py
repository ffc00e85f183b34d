"""Console pages of the MCP gateway, under /console/t/<tenant_slug>/mcp/."""

from django.urls import path

from routing.mcp_gateway import views

app_name = "mcp"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("prices/", views.price_save, name="price_save"),
    path("client-credentials/", views.credentials_save, name="credentials_save"),
]
