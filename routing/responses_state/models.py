"""Responses kept for OpenAI's Responses API (`store`, `previous_response_id`, retrieval).

Each row is self-contained: `input_items` is the whole context the model was given (earlier
turns' input and output, then this turn's input), so a turn can be continued, listed or deleted
without walking a chain whose older links may have expired or been deleted.
"""

from django.db import models


class StoredResponse(models.Model):
    response_id = models.CharField(max_length=64, unique=True)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    api_key_id = models.BigIntegerField()  # who created it; any key of the tenant may read it
    request_id = models.CharField(max_length=40)  # its audit record
    previous_response_id = models.CharField(max_length=64, blank=True, default="")
    model = models.CharField(max_length=200)  # as the client asked for it
    # The tenant's audit content mode when it was kept: only "full" keeps text to continue from.
    content_mode = models.CharField(max_length=16)
    input_items = models.JSONField(default=list)
    response = models.JSONField()  # the response object as the client received it
    # Whether both JSON fields are stored escaped (NUL, lone surrogates: audit/storable.py).
    stored_escaped = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="stored_response_expiry")]

    def __str__(self) -> str:
        return self.response_id


class ResponsesPolicy(models.Model):
    """How long a tenant's stored responses are kept (GATEWAY_RESPONSES_RETENTION_DAYS without one)."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="responses_policy"
    )
    retention_days = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.retention_days} days"


class Conversation(models.Model):
    """OpenAI's Conversations API: a tenant's running list of items that Responses turns read
    (`conversation` on `POST /v1/responses`) and append to. It expires its tenant's retention
    after its last change; its items go with it."""

    conversation_id = models.CharField(max_length=64, unique=True)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    api_key_id = models.BigIntegerField()  # who created it; any key of the tenant may use it
    metadata = models.JSONField(default=dict)
    # The strictest audit content mode its items were kept under: only "full" can be continued.
    content_mode = models.CharField(max_length=16)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="conversation_expiry")]

    def __str__(self) -> str:
        return self.conversation_id


class ConversationItem(models.Model):
    """One item of a conversation, in the order it was added (`id`)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="items")
    item_id = models.CharField(max_length=80)
    item = models.JSONField()
    stored_escaped = models.BooleanField(default=False)  # audit/storable.py
    # The turn that added it (its audit record is req_<hex> of resp_<hex>); "" when added by
    # `POST /v1/conversations/{id}/items` or at creation.
    response_id = models.CharField(max_length=64, blank=True, default="")
    # Who added it directly (the request's end user, as its audit records name them), so that
    # erasing an end user's records erases these too; a turn's items go with its records.
    end_user = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "item_id"], name="conversation_item_unique"
            )
        ]

    def __str__(self) -> str:
        return self.item_id
