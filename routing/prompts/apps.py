from django.apps import AppConfig


class PromptsConfig(AppConfig):
    name = "routing.prompts"
    label = "prompts"
    verbose_name = "Prompt registry"

    def ready(self) -> None:
        from gateway_site.console.nav import NavEntry, nav_register

        nav_register(NavEntry("Developer", "Prompts", "prompts:list", 40))
