from django.apps import AppConfig


class QuotasConfig(AppConfig):
    name = "quotas"
    verbose_name = "Rate limits and budgets"

    def ready(self) -> None:
        from console.nav import NavEntry, nav_register

        nav_register(NavEntry("Administration", "Limits and budgets", "quotas:limits", 45))
