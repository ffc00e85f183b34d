from django.apps import AppConfig


class QuotasConfig(AppConfig):
    name = "tenants.quotas"
    label = "quotas"
    verbose_name = "Rate limits and budgets"

    def ready(self) -> None:
        from tenants.quotas.services import key_rules_carry
        from tenants.signals import key_rotated

        key_rotated.connect(key_rules_carry, dispatch_uid="quotas.key_rules_carry")
        from audit.writer import use_ledger
        from gateway_site.console.nav import NavEntry, nav_register
        from tenants.quotas import ledger

        use_ledger(ledger)  # a record and its spend are written in one statement

        nav_register(NavEntry("Administration", "Limits and budgets", "quotas:limits", 45))
        nav_register(NavEntry("Finance", "Cost approvals", "quotas:approvals", 60))
