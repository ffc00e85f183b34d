from django.apps import AppConfig


class ActivityConfig(AppConfig):
    name = "audit.activity"
    label = "activity"
    verbose_name = "Admin activity log"
