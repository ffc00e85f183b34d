from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    name = "routing.evaluations"
    label = "evaluations"
    verbose_name = "Evaluations and task categories"

    def ready(self) -> None:
        from gateway_site.console.nav import NavEntry, nav_register

        nav_register(NavEntry("Administration", "Routing quality", "evaluations:scores", 42))
        nav_register(NavEntry("Administration", "Task categories", "evaluations:categories", 73))
