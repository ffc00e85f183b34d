from django.apps import AppConfig


class DeclarativeConfig(AppConfig):
    name = "declarative"
    verbose_name = "Declarative configuration (YAML)"
