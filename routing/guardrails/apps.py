from django.apps import AppConfig


class GuardrailsConfig(AppConfig):
    name = "routing.guardrails"
    label = "guardrails"
    verbose_name = "Guardrail policies"

    def ready(self) -> None:
        from routing.guardrails.services import key_policies_carry
        from tenants.signals import key_rotated

        key_rotated.connect(key_policies_carry, dispatch_uid="guardrails.key_policies_carry")
        from gateway_site.console.nav import NavEntry, nav_register

        nav_register(NavEntry("Administration", "Guardrail policies", "guardrails:list", 60))
        nav_register(NavEntry("Compliance", "Quarantine review", "guardrails:review", 60))
