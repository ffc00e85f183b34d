from django.conf import settings
from django.db import models


class ActivityEvent(models.Model):
    """One change made by a person, an admin key or the declarative config: who, what, to what.

    Written by the services in the same transaction as the change itself, so a change without its
    event cannot exist. Rows are only ever inserted.
    """

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Null for platform-wide changes (providers, deployments, routes).
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_kind = models.CharField(max_length=16)  # user | admin_key | config | system
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=64, db_index=True)  # dotted, e.g. "key.create"
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64, blank=True, default="")
    target_label = models.CharField(max_length=200, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "-occurred_at"], name="activity_tenant_recent")]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_label}"
