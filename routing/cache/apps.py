from django.apps import AppConfig


class ResponseCacheConfig(AppConfig):
    name = "routing.cache"
    label = "response_cache"
    verbose_name = "Response cache"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from gateway_site.console.nav import NavEntry, nav_register

        nav_register(NavEntry("Administration", "Response cache", "response_cache:cache", 60))
