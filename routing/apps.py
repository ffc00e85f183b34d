from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Providers, deployments and routes"

    def ready(self) -> None:
        from gateway_site import request_lifecycle

        request_lifecycle.install()
