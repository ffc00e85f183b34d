"""Alerts: one row per condition while it lasts, resolved when it ends."""

from django.db import models
from django.db.models import Q


class AlertStatus(models.TextChoices):
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    """A Tier 1 signal (or a budget early warning) that crossed its threshold.

    Deduplicated by (rule, subject): while one is firing, the same condition only refreshes
    `last_seen_at`; it is resolved on the first evaluation that no longer sees it.
    """

    rule = models.CharField(max_length=32)
    # What the condition is about: a deployment, a team, a tenant, a budget window.
    subject = models.CharField(max_length=300)
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    tier = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=8, choices=AlertStatus.choices)
    message = models.CharField(max_length=500)
    context = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Each delivery attempt: channel, target, event, outcome.
    deliveries = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "subject"],
                condition=Q(status="firing"),
                name="one_firing_alert_per_condition",
            )
        ]
        indexes = [models.Index(fields=["status", "opened_at"], name="alert_status_time")]

    def __str__(self) -> str:
        return f"{self.rule} {self.subject} ({self.status})"


class AlertRuleKind(models.TextChoices):
    PROVIDER_ERROR_RATE = "provider_error_rate", "Provider error rate (share of attempts, 0 to 1)"
    COST_SPIKE = "cost_spike", "Cost spike (factor over the usual hour)"
    PII_SPIKE = "pii_spike", "PII findings spike (factor over the trailing day)"
    LATENCY_P99 = "latency_p99", "Gateway p99 latency (milliseconds)"


class AlertRule(models.Model):
    """A platform admin's threshold for one alert, over the environment's default
    (audit/observability/alert_rules.py); disabled, it never fires."""

    rule = models.CharField(max_length=32, choices=AlertRuleKind.choices, unique=True)
    enabled = models.BooleanField(default=True)
    threshold = models.FloatField()
    # The least volume before it may fire: attempts, USD, findings or requests in the window.
    minimum = models.FloatField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.rule}: {self.threshold} (min {self.minimum})"
