from django.apps import AppConfig


class QuotasConfig(AppConfig):
    name = "tenants.quotas"
    label = "quotas"
    verbose_name = "Rate limits and budgets"

    def ready(self) -> None:
        from gateway_site.console.nav import NavEntry, nav_register

        nav_register(NavEntry("Administration", "Limits and budgets", "quotas:limits", 45))
        nav_register(NavEntry("Finance", "Cost approvals", "quotas:approvals", 60))
