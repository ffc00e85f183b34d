from django.db import models
from django.db.models import Q


class GuardrailPolicy(models.Model):
    """A named set of checks and actions (routing/guardrails/core/policy.py: PolicySpec is its `spec`).

    A policy owned by a tenant can only be attached inside that tenant; a platform policy
    (no tenant) can be attached anywhere, routes included.
    """

    name = models.SlugField(max_length=64, unique=True)
    tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="guardrail_policies",
    )
    description = models.CharField(max_length=500, blank=True, default="")
    spec = models.JSONField(default=dict)
    is_active = models.BooleanField(default=True)
    # Shadow mode: the policy's checks run and their findings are recorded (marked `shadow`),
    # but nothing is masked, refused or rerouted because of it.
    shadow = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class PolicyAttachment(models.Model):
    """A policy applies to everything of one tenant, team, key, or route alias; a route with a
    tenant is that tenant's requests on the route only (how a tenant's own policy meets a route)."""

    policy = models.ForeignKey(
        GuardrailPolicy, on_delete=models.CASCADE, related_name="attachments"
    )
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    team = models.ForeignKey(
        "tenants.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    api_key = models.ForeignKey(
        "tenants.ApiKey", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    route = models.ForeignKey(
        "routing.Route", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(
                        tenant__isnull=False,
                        team__isnull=True,
                        api_key__isnull=True,
                        route__isnull=True,
                    )
                    | Q(
                        tenant__isnull=True,
                        team__isnull=False,
                        api_key__isnull=True,
                        route__isnull=True,
                    )
                    | Q(
                        tenant__isnull=True,
                        team__isnull=True,
                        api_key__isnull=False,
                        route__isnull=True,
                    )
                    | Q(team__isnull=True, api_key__isnull=True, route__isnull=False)
                ),
                name="attachment_has_exactly_one_scope",
            ),
            models.UniqueConstraint(
                fields=["policy", "tenant", "team", "api_key", "route"],
                nulls_distinct=False,
                name="attachment_unique",
            ),
        ]

    def __str__(self) -> str:
        kind, value = self.scope
        return f"{self.policy_id} → {kind} {value}"

    @property
    def scope(self) -> tuple[str, int]:
        for kind in ("route", "tenant", "team", "api_key"):
            value = getattr(self, f"{kind}_id")
            if value is not None:
                return kind, value
        raise ValueError("an attachment without a scope")


class ReviewStatus(models.TextChoices):
    HELD = "held", "Held"
    RELEASED = "released", "Released"
    DISMISSED = "dismissed", "Dismissed"


class ReviewLabel(models.TextChoices):
    INJECTION = "injection", "Injection"
    BENIGN = "benign", "Benign"


class QuarantineReview(models.Model):
    """A reviewer's decision on a quarantined request (its audit record holds the request; the
    queue is the records with a `quarantine` finding, the record itself never changes).

    Released: the same text is accepted when sent again (`digest`). Labels feed the classifier's
    next training run (`manage.py guardrail_labels_export`)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    request_id = models.CharField(max_length=40)
    digest = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.HELD
    )
    label = models.CharField(max_length=16, choices=ReviewLabel.choices, blank=True, default="")
    reviewer = models.CharField(max_length=200, blank=True, default="")
    reviewed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "request_id"], name="review_once")]
        indexes = [models.Index(fields=["tenant", "status"])]

    def __str__(self) -> str:
        return f"review of {self.request_id}"
