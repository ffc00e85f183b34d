from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from gateway_site.console.nav import NavEntry, nav_register

        nav_register(NavEntry("Compliance", "Audit trail", "compliance:search", 10))
        nav_register(NavEntry("Compliance", "Chain verification", "compliance:chain", 20))
        nav_register(NavEntry("Compliance", "Audit policy", "compliance:policy", 30))
        nav_register(NavEntry("Compliance", "Legal holds", "compliance:holds", 40))
        nav_register(NavEntry("Compliance", "Erasure requests", "compliance:erasure", 50))
