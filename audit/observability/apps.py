from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "audit.observability"
    label = "observability"
    verbose_name = "Metrics, health and alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from audit.observability.metrics import DeploymentHealthCollector
        from audit.observability.views import health_states

        REGISTRY.register(DeploymentHealthCollector(health_states))

        from gateway_site.console.nav import NavEntry, nav_register

        nav_register(NavEntry("Administration", "Alerts", "observability:alerts", 60))
        nav_register(NavEntry("Administration", "Alert rules", "observability:rules", 74))
