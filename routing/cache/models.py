from django.db import models


class SemanticEntry(models.Model):
    """A cached question's embedding, durable so every gateway process can search it.

    The answer itself lives in the exact store under `cache_key`; a question whose answer expired
    or was purged leads nowhere (a miss). Never shared across tenants: `partition` hashes the
    tenant (and team or user scope) with the request's non-text parameters.
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    route_alias = models.CharField(max_length=128)
    partition = models.CharField(max_length=64)
    cache_key = models.CharField(max_length=160)
    # float32 little-endian, unit length; `embedder` names the model that made it.
    vector = models.BinaryField()
    embedder = models.CharField(max_length=64)
    # The question's stemmed meaning words, space-separated (keys.one_word_swapped reads them).
    terms = models.TextField(blank=True, default="")
    # What produced the answer: the deployment, and the registry prompt version if any.
    deployment_name = models.CharField(max_length=128, blank=True, default="")
    prompt_name = models.CharField(max_length=128, blank=True, default="")
    prompt_version = models.PositiveIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "route_alias"], name="cache_tenant_route"),
            models.Index(fields=["tenant", "prompt_name", "prompt_version"], name="cache_prompt"),
            models.Index(fields=["expires_at"], name="cache_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.route_alias}: {self.request_id}"
