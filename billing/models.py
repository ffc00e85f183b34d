"""Prices as versioned data, and the hourly/daily usage rollups finance reads.

A request's cost is computed once, on the hot path, from the price in force when it ran and
stored on its audit record; a new price is a new row with a later `effective_from`, so past
costs are never rewritten.
"""

from django.db import models
from django.db.models import Q


class PriceSource(models.TextChoices):
    CATALOG = "catalog", "Shipped price list"
    CONFIG = "config", "Declarative YAML"
    CONSOLE = "console", "Console"
    GPU = "gpu", "GPU-hours amortised over traffic"


class Price(models.Model):
    """What one deployment (or, in the catalog, one upstream model) costs from a moment on.

    A deployment's own price wins over the catalog price of its upstream model.
    """

    deployment = models.ForeignKey(
        "routing.Deployment",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="prices",
    )
    # Catalog rows: the upstream model name they price (deployment empty).
    model = models.CharField(max_length=200, blank=True, default="")
    effective_from = models.DateTimeField()
    input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    output_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    # Provider prompt-cache reads; empty: charged as ordinary input.
    cached_input_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True
    )
    per_request_usd = models.DecimalField(max_digits=12, decimal_places=8, default=0)
    # Provider-run tools (a Responses request's web_search, file_search…): USD per call, by the
    # tool's type ({"web_search": "0.01"}); a tool not named costs nothing beyond its tokens.
    per_tool_call_usd = models.JSONField(default=dict, blank=True)
    # Self-hosted: what the deployment's GPUs cost per hour; the token prices are then derived
    # from the traffic they served (billing/gpu.py).
    gpu_hour_usd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    source = models.CharField(max_length=8, choices=PriceSource.choices)
    note = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(deployment__isnull=False, model="")
                | Q(deployment__isnull=True) & ~Q(model=""),
                name="price_for_a_deployment_or_a_model",
            ),
            models.UniqueConstraint(
                fields=["deployment", "model", "effective_from"],
                name="one_price_per_subject_and_moment",
                nulls_distinct=False,
            ),
        ]
        indexes = [models.Index(fields=["model", "effective_from"], name="price_model_time")]

    def __str__(self) -> str:
        subject = self.deployment.name if self.deployment else self.model
        return f"price of {subject} from {self.effective_from:%Y-%m-%d %H:%M}"


class Granularity(models.TextChoices):
    HOUR = "hour", "Hour"
    DAY = "day", "Day"


class UsageRollup(models.Model):
    """Requests of one bucket (hour or UTC day), grouped by who made them and which model.

    Rebuilt whole for a window each time it is rolled up: re-running gives the same rows.
    """

    granularity = models.CharField(max_length=4, choices=Granularity.choices)
    bucket_start = models.DateTimeField()
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey("tenants.Team", on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey("tenants.ApiKey", on_delete=models.CASCADE, related_name="+")
    end_user = models.CharField(max_length=200, blank=True, default="")
    feature = models.CharField(max_length=200, blank=True, default="")
    # The deployment that answered, or the model asked for when none did.
    model = models.CharField(max_length=200, blank=True, default="")
    # What routed the request, for the dashboards: the provider that served it, the route alias
    # asked for and the task category the route classified it as ("" when none).
    provider = models.CharField(max_length=64, blank=True, default="")
    route = models.CharField(max_length=128, blank=True, default="")
    category = models.CharField(max_length=64, blank=True, default="")

    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)  # provider errors and broken streams
    rejected = models.PositiveIntegerField(default=0)  # refused by the gateway (limits, policy)
    cache_hits = models.PositiveIntegerField(default=0)  # requests served partly from a cache
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    latency_p50_ms = models.FloatField(null=True, blank=True)
    latency_p95_ms = models.FloatField(null=True, blank=True)
    latency_p99_ms = models.FloatField(null=True, blank=True)
    # Streams: time to the first token.
    ttft_p50_ms = models.FloatField(null=True, blank=True)
    ttft_p95_ms = models.FloatField(null=True, blank=True)
    ttft_p99_ms = models.FloatField(null=True, blank=True)
    # Requests a fallback served: more than one deployment was tried.
    fallbacks = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "granularity",
                    "bucket_start",
                    "tenant",
                    "team",
                    "api_key",
                    "end_user",
                    "feature",
                    "model",
                    "provider",
                    "route",
                    "category",
                ],
                name="one_rollup_row_per_group",
            )
        ]
        indexes = [
            models.Index(
                fields=["tenant", "granularity", "bucket_start"], name="rollup_tenant_time"
            ),
            models.Index(fields=["team", "granularity", "bucket_start"], name="rollup_team_time"),
        ]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket_start:%Y-%m-%d %H:%M} team {self.team_id}"


class RollupWatermark(models.Model):
    """Buckets before `done_until` have been rolled up at least once (catch-up starts here)."""

    granularity = models.CharField(max_length=4, choices=Granularity.choices, unique=True)
    done_until = models.DateTimeField()
    # The newest audit record when the last run began: a record written since then into a
    # window before the windows rolled again is rolled in by the next run.
    seen_record_id = models.BigIntegerField(default=0)
    # The records still in progress when the last run began: a stream that finishes later
    # changes a window that may no longer be rolled again, under an id older than the above.
    open_record_ids = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"{self.granularity} rollups done until {self.done_until:%Y-%m-%d %H:%M}"
