from django.db import models


class AdminKey(models.Model):
    """A key for the management API. Only a SHA-256 hash is stored, as for virtual keys.

    Scoped to one tenant, or to the whole platform when `tenant` is null. A tenant key acts in
    one role, as a member would in the console: `tenant_admin` manages the tenant; `compliance`
    and `finance` keys read only what those roles read there (audit search and export, the cost
    report). A platform key passes everywhere, as a platform admin does.
    """

    name = models.CharField(max_length=200)
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    role = models.CharField(max_length=32, default="tenant_admin")
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    # Who asked for it: a person at the command line, or another admin key.
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_platform(self) -> bool:
        return self.tenant_id is None
