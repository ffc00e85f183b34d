from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Cost and billing"

    def ready(self) -> None:
        from gateway_site.console.nav import NavEntry, nav_register

        nav_register(NavEntry("Overview", "Dashboards", "billing:dashboard", 5))
        nav_register(NavEntry("Finance", "Cost", "billing:finance", 10))
        nav_register(NavEntry("Finance", "Prices", "billing:prices", 20))
