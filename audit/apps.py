from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from gateway_site.console.nav import NavEntry, nav_register

        nav_register(NavEntry("Compliance", "Audit trail", "compliance:search", 10))
        nav_register(NavEntry("Compliance", "Chain verification", "compliance:chain", 20))
