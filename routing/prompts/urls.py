"""Console pages for prompts, under /console/t/<tenant_slug>/prompts/ (gateway_site/urls.py)."""

from django.urls import path

from routing.prompts import views

app_name = "prompts"

urlpatterns = [
    path("", views.prompt_list, name="list"),
    path("new/", views.prompt_create, name="create"),
    path("<str:name>/", views.prompt_detail, name="detail"),
    path("<str:name>/publish/", views.prompt_publish, name="publish"),
    path("<str:name>/labels/", views.label_move, name="label_move"),
    path("<str:name>/labels/<str:label>/rollback/", views.label_rollback, name="label_rollback"),
    path("<str:name>/pins/", views.pin_set, name="pin_set"),
    path("<str:name>/pins/<int:pin_id>/clear/", views.pin_clear, name="pin_clear"),
    path("<str:name>/diff/", views.version_diff, name="diff"),
    path("<str:name>/v/<int:number>/", views.version_detail, name="version"),
]
