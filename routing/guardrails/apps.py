from django.apps import AppConfig


class GuardrailsConfig(AppConfig):
    name = "routing.guardrails"
    label = "guardrails"
    verbose_name = "Guardrail policies"
