from django.db import models


class AuditStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"  # a stream that has not finished (yet)
    SUCCESS = "success", "Success"
    REJECTED = "rejected", "Rejected by the gateway"  # bad input, unknown model, policy
    UPSTREAM_ERROR = "upstream_error", "Provider error"
    FAILED = "failed", "Failed"  # broken stream, gateway fault


class AuditRecord(models.Model):
    """One row per proxied request, written before the client sees the answer.

    A non-streaming request is inserted once, complete. A stream is inserted as `in_progress`
    before forwarding and completed once at its end, so a crash leaves a visible unfinished
    record rather than a missing one (docs/adr/0002-audit-durability.md).
    """

    request_id = models.CharField(max_length=40, unique=True)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey("tenants.Team", on_delete=models.PROTECT, related_name="+")
    api_key = models.ForeignKey("tenants.ApiKey", on_delete=models.PROTECT, related_name="+")
    end_user = models.CharField(max_length=200, blank=True, default="")
    feature = models.CharField(max_length=200, blank=True, default="")
    client_context = models.JSONField(default=dict, blank=True)

    endpoint = models.CharField(max_length=64)
    model_requested = models.CharField(max_length=200, blank=True, default="")
    route_alias = models.CharField(max_length=128, blank=True, default="")
    deployment_name = models.CharField(max_length=128, blank=True, default="")
    provider_name = models.CharField(max_length=64, blank=True, default="")
    upstream_model = models.CharField(max_length=200, blank=True, default="")
    stream = models.BooleanField(default=False)
    attempts = models.JSONField(default=list, blank=True)

    request_body = models.JSONField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    tool_results = models.JSONField(default=list, blank=True)
    # What the request and response policies found (PII, injection, output rules).
    guardrail_findings = models.JSONField(default=list, blank=True)

    # The prompt used: a registry version, or a fingerprint of a caller's own system prompt.
    prompt_name = models.CharField(max_length=128, blank=True, default="")
    prompt_version = models.PositiveIntegerField(null=True, blank=True)
    prompt_label = models.CharField(max_length=64, blank=True, default="")
    prompt_fingerprint = models.CharField(max_length=64, blank=True, default="")

    # The limits and budget reservations that applied, and whether usage was counted locally
    # (a stream cut short) rather than reported by the provider.
    quota = models.JSONField(default=dict, blank=True)
    usage_estimated = models.BooleanField(default=False)

    status = models.CharField(max_length=16, choices=AuditStatus.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_type = models.CharField(max_length=64, blank=True, default="")
    error_message = models.TextField(blank=True, default="")

    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=16, decimal_places=10, default=0)
    latency_ms = models.FloatField(null=True, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)

    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "started_at"], name="audit_tenant_time"),
            models.Index(
                fields=["tenant", "end_user", "started_at"], name="audit_tenant_user_time"
            ),
            models.Index(fields=["status"], name="audit_status"),
        ]

    def __str__(self) -> str:
        return self.request_id
