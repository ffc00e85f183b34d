from django.apps import AppConfig


class ResponsesStateConfig(AppConfig):
    name = "routing.responses_state"
    label = "responses_state"
    verbose_name = "Stored responses (Responses API)"
