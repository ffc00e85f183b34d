from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "gateway_site.console"
    label = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        from gateway_site.console import nav

        nav.register_console_pages()
