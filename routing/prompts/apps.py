from django.apps import AppConfig


class PromptsConfig(AppConfig):
    name = "routing.prompts"
    label = "prompts"
    verbose_name = "Prompt registry"

    def ready(self) -> None:
        from routing.prompts.services import key_pins_carry
        from tenants.signals import key_rotated

        key_rotated.connect(key_pins_carry, dispatch_uid="prompts.key_pins_carry")
        from gateway_site.console.nav import NavEntry, nav_register

        nav_register(NavEntry("Developer", "Prompts", "prompts:list", 40))
