from django.conf import settings
from django.db import models
from django.db.models import Q


class Tenant(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    # Data residency (e.g. "eu"): when set, requests are only routed to deployments in it.
    residency_region = models.CharField(max_length=32, blank=True, default="")
    # Public model names (route aliases or deployments) the tenant may use; empty means all.
    allowed_models = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class Team(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="teams")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    # Public model names the team may use; empty means every model of the gateway.
    allowed_models = models.JSONField(default=list, blank=True)
    # Version pins, {public model name: deployment name or upstream model}: only that deployment
    # serves the model for the team's keys, with no fallback to another version.
    model_pins = models.JSONField(default=dict, blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="team_slug_unique_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.slug}"


class Role(models.TextChoices):
    PLATFORM_ADMIN = "platform_admin", "Platform admin"
    TENANT_ADMIN = "tenant_admin", "Tenant admin"
    COMPLIANCE = "compliance", "Compliance"
    FINANCE = "finance", "Finance"
    DEVELOPER = "developer", "Developer"


class Membership(models.Model):
    """A user's role in one tenant; a user may belong to several tenants."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="one_role_per_user_and_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant.slug}: {self.role}"


class ApiKey(models.Model):
    """A virtual key. Only a SHA-256 hash of the secret is stored; the prefix identifies it."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="api_keys")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="api_keys")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="api_keys",
    )
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    # Public model names this key may use, within what its team allows; empty means all of them.
    allowed_models = models.JSONField(default=list, blank=True)
    # Version pins like the team's; a key's pin for a model overrides its team's.
    model_pins = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Set when the key was rotated: its successor; the old key works until its expiry (the grace).
    replaced_by = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=Q(revoked_at__isnull=True),
                name="active_key_name_unique_per_tenant",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
