from django.apps import AppConfig


class ManagementConfig(AppConfig):
    name = "gateway_site.api"
    label = "management"
    verbose_name = "Management API"
