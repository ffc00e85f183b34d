from django.apps import AppConfig


class ResponsesStateConfig(AppConfig):
    name = "routing.responses_state"
    label = "responses_state"
    verbose_name = "Stored responses (Responses API)"

    def ready(self) -> None:
        from audit.signals import records_erased
        from routing.responses_state.services import erased_copies_forget

        records_erased.connect(erased_copies_forget, dispatch_uid="responses_state.erased")
