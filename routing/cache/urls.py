"""The response cache page, under /console/t/<tenant_slug>/cache/ (access declared on the view)."""

from django.urls import path

from routing.cache import views

app_name = "response_cache"

urlpatterns = [path("", views.cache_page, name="cache")]
