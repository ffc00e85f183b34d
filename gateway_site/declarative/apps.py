from django.apps import AppConfig


class DeclarativeConfig(AppConfig):
    name = "gateway_site.declarative"
    label = "declarative"
    verbose_name = "Declarative configuration (YAML)"
