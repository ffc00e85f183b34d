from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Providers, deployments and routes"

    def ready(self) -> None:
        from gateway_site import request_lifecycle

        request_lifecycle.install()

        from gateway_site.console.nav import NavEntry, nav_register

        nav_register(NavEntry("Administration", "Providers", "routing:providers", 70))
        nav_register(NavEntry("Administration", "Deployments", "routing:deployments", 71))
        nav_register(NavEntry("Administration", "Routes", "routing:routes", 72))
