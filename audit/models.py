from django.conf import settings
from django.db import models


class AuditStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"  # a stream that has not finished (yet)
    SUCCESS = "success", "Success"
    REJECTED = "rejected", "Rejected by the gateway"  # bad input, unknown model, policy
    UPSTREAM_ERROR = "upstream_error", "Provider error"
    FAILED = "failed", "Failed"  # broken stream, gateway fault
    # The gateway stopped (crash, kill) while the call was at the provider: recorded from the
    # write-ahead journal by the next start (audit/journal.py).
    INTERRUPTED = "interrupted", "Interrupted"


# The endpoint of an MCP tool call's record (routing/mcp_gateway/): what the search's "tool calls"
# filter finds.
MCP_TOOL_CALL_ENDPOINT = "/mcp tools/call"


class RecordKind(models.TextChoices):
    MODEL = "model", "Model requests"
    TOOL = "tool", "MCP tool calls"


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
    # The agent that made the call: header, metadata or a known client (routing/agent_identity.py).
    agent = models.CharField(max_length=200, blank=True, default="")
    client_context = models.JSONField(default=dict, blank=True)

    endpoint = models.CharField(max_length=64)
    model_requested = models.CharField(max_length=200, blank=True, default="")
    route_alias = models.CharField(max_length=128, blank=True, default="")
    deployment_name = models.CharField(max_length=128, blank=True, default="")
    provider_name = models.CharField(max_length=64, blank=True, default="")
    upstream_model = models.CharField(max_length=200, blank=True, default="")
    stream = models.BooleanField(default=False)
    attempts = models.JSONField(default=list, blank=True)
    # How the deployments were ordered: {"strategy", "category", "reason"}.
    routing = models.JSONField(default=dict, blank=True)

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
    # The columns whose text is stored escaped because it held characters PostgreSQL refuses
    # (NUL, lone surrogates): audit/storable.py reads them back exactly.
    stored_escaped = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "started_at"], name="audit_tenant_time"),
            models.Index(
                fields=["tenant", "end_user", "started_at"], name="audit_tenant_user_time"
            ),
            models.Index(
                fields=["tenant", "status", "started_at"], name="audit_tenant_status_time"
            ),
            # The audit search by agent; most records of plain API calls name none.
            models.Index(
                fields=["tenant", "agent", "started_at"],
                condition=~models.Q(agent=""),
                name="audit_tenant_agent_time",
            ),
            # Streams still running: few rows, looked up by the sealer and by monitoring.
            models.Index(
                fields=["id"], condition=models.Q(status="in_progress"), name="audit_in_progress"
            ),
            models.Index(fields=["started_at"], name="audit_time"),
            models.Index(
                fields=["tenant", "model_requested", "started_at"], name="audit_tenant_model_time"
            ),
            # Full-text search over prompt and response text: a GIN expression index made on
            # PostgreSQL by migration 0004 (audit/search.py builds the matching expression).
        ]

    def __str__(self) -> str:
        return self.request_id


class ContentMode(models.TextChoices):
    FULL = "full", "Full content"
    MASKED = "masked", "Masked (emails, phone and account numbers replaced)"
    METADATA = "metadata", "Metadata only (hashes of the content)"


class AuditPolicy(models.Model):
    """What a tenant keeps of prompts and responses, and for how long."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="audit_policy"
    )
    content_mode = models.CharField(
        max_length=16, choices=ContentMode.choices, default=ContentMode.FULL
    )
    # Null keeps records forever; seven years is a common regulatory minimum.
    retention_days = models.PositiveIntegerField(null=True, blank=True, default=7 * 365)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.content_mode}, {self.retention_days or '∞'} days"


class LegalHold(models.Model):
    """Stops the retention job purging a tenant's records, or one user's, or a date range."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    end_user = models.CharField(max_length=200, blank=True, default="")  # empty: every user
    starts_at = models.DateTimeField(null=True, blank=True)  # null: from the beginning
    ends_at = models.DateTimeField(null=True, blank=True)  # null: onwards
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"hold on {self.tenant_id} {self.end_user or '*'}: {self.reason}"


class AuditSeal(models.Model):
    """A record's link in its tenant's hash chain. Only ever inserted (triggers on PostgreSQL).

    `record_id` is not a foreign key: a seal outlives its record when retention purges it, so the
    chain stays verifiable across the gap (the purge is itself checkpointed).
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    seq = models.PositiveBigIntegerField()
    record_id = models.BigIntegerField(unique=True)
    version = models.PositiveSmallIntegerField(default=1)  # of the canonical form
    payload_hash = models.CharField(max_length=64)
    content_hash = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "seq"], name="audit_seal_seq_unique")
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}#{self.seq}"


class AuditChainHead(models.Model):
    """Where each tenant's chain ends, so the sealer need not scan it. Not trusted by verification."""

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.tenant_id}#{self.seq}"


class SealerState(models.Model):
    """One row: below `low_watermark` every record is sealed (or still streaming).

    A record can commit after one with a larger id (ids are taken at insert, not at commit), so a
    new watermark becomes the low watermark only a while after it was computed.
    """

    low_watermark = models.BigIntegerField(default=0)
    next_watermark = models.BigIntegerField(default=0)
    next_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"sealed below {self.low_watermark}"


class CheckpointKind(models.TextChoices):
    HEAD = "head", "Chain head"
    PURGE = "purge", "Retention purge"


class AuditCheckpoint(models.Model):
    """A signed statement of a chain's head (so truncation shows) or of what retention purged."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=CheckpointKind.choices)
    seq = models.PositiveBigIntegerField()  # head: the last sealed seq
    head_hash = models.CharField(max_length=64)
    count = models.PositiveBigIntegerField()  # head: records chained; purge: records purged
    # purge: the chain positions removed, as [first, last] runs
    purged_ranges = models.JSONField(default=list, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    signature = models.CharField(max_length=64)

    class Meta:
        indexes = [models.Index(fields=["tenant", "kind", "seq"], name="audit_ckpt_tenant_seq")]

    def __str__(self) -> str:
        return f"{self.kind} {self.tenant_id}@{self.seq}"


class AuditErasure(models.Model):
    """The tombstone of a lawful erasure: the payload is gone, its hash stays in the seal."""

    record_id = models.BigIntegerField(unique=True)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    payload_hash = models.CharField(max_length=64)
    reason = models.CharField(max_length=500)
    actor_label = models.CharField(max_length=200)
    erased_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"erasure of {self.record_id}"


class AuditAccess(models.Model):
    """Who looked at what: every console search, record view and export. Only ever inserted."""

    occurred_at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    user_label = models.CharField(max_length=200)
    action = models.CharField(max_length=32)  # audit.search | audit.view | audit.export | ...
    # The tenants the user could see at the time (empty for a platform admin: all of them).
    tenant_ids = models.JSONField(default=list, blank=True)
    query = models.JSONField(default=dict, blank=True)
    record_count = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.user_label} {self.action}"


class AuditExport(models.Model):
    """The manifest of a finished export: what was exported, by whom, and how to verify it.

    Inserted once, when the last byte has been streamed; only ever inserted.
    """

    id = models.UUIDField(primary_key=True)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    user_label = models.CharField(max_length=200)
    format = models.CharField(max_length=8)  # csv | jsonl
    filters = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField()
    manifest = models.JSONField()
    signature = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"export {self.id} ({self.format})"


class ErasureStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a second person"
    APPROVED = "approved", "Approved and erased"
    REFUSED = "refused", "Refused"


class ErasureRequest(models.Model):
    """A lawful erasure asked by one person and carried out only when another approves it."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    end_user = models.CharField(max_length=200)
    reason = models.CharField(max_length=500)
    status = models.CharField(
        max_length=8, choices=ErasureStatus.choices, default=ErasureStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    records_erased = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True)
                | ~models.Q(decided_by=models.F("requested_by")),
                name="erasure_decided_by_another_person",
            )
        ]

    def __str__(self) -> str:
        return f"erasure request {self.pk} for {self.end_user} ({self.status})"


class MonthState(models.TextChoices):
    LIVE = "live", "Live (records still arrive or are not all sealed)"
    SEALED = "sealed", "Sealed (every record chained; summary signed)"
    DROPPED = "dropped", "Dropped by retention"
    ATTACHED = "attached", "Re-attached from its archive, read-only"


class AuditMonth(models.Model):
    """One month of audit records: on PostgreSQL a partition of the records table
    (audit/partitions.py). A sealed month's summary (per tenant: how many records and which chain
    positions) is signed; retention drops the month by it and the archive states it."""

    month = models.DateField(unique=True)  # its first day (UTC)
    table = models.CharField(max_length=63)
    state = models.CharField(max_length=8, choices=MonthState.choices, default=MonthState.LIVE)
    record_count = models.PositiveBigIntegerField(default=0)
    last_record_id = models.BigIntegerField(default=0)
    # {"<tenant id>": {"count": n, "ranges": [[first seq, last seq], ...]}}
    tenants = models.JSONField(default=dict, blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)
    signature = models.CharField(max_length=64, blank=True, default="")
    archive_url = models.CharField(max_length=500, blank=True, default="")
    archive_sha256 = models.CharField(max_length=64, blank=True, default="")
    dropped_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} ({self.state})"
