from django.db import models

from gateway_site.crypto import decrypt_secret, encrypt_secret


class ProviderKind(models.TextChoices):
    OPENAI = "openai", "OpenAI-compatible (OpenAI, vLLM, Ollama, …)"
    ANTHROPIC = "anthropic", "Anthropic"
    # Also serves OpenAI's Responses API: /v1/responses goes to it as the client sent it.
    OPENAI_RESPONSES = "openai-responses", "OpenAI-compatible with the Responses API (OpenAI, …)"


class Provider(models.Model):
    """A provider account: where requests go and with which credential."""

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=ProviderKind.choices)
    base_url = models.URLField(max_length=500)
    # Fernet token; never the plain credential (see gateway_site/crypto.py).
    credential_encrypted = models.TextField(blank=True, default="")
    region = models.CharField(max_length=32, blank=True, default="")
    # The account's own rate limits: the gateway never sends more, and shares them fairly.
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    # How long a request may wait for capacity before it falls over or gets a 429.
    capacity_queue_seconds = models.FloatField(default=0)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def set_credential(self, plain: str) -> None:
        self.credential_encrypted = encrypt_secret(plain) if plain else ""

    def get_credential(self) -> str:
        return decrypt_secret(self.credential_encrypted) if self.credential_encrypted else ""


class Deployment(models.Model):
    """A model served by a provider, under a public name clients may ask for."""

    name = models.SlugField(max_length=128, unique=True)
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="deployments")
    upstream_model = models.CharField(max_length=200)
    input_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    output_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class Route(models.Model):
    """A public model alias that maps to one or more deployments (routing/core/strategy.py)."""

    class Strategy(models.TextChoices):
        ORDERED = "ordered", "Ordered: primary first, then fallbacks"
        WEIGHTED = "weighted", "Weighted: split by weight (a canary with sticky)"
        LATENCY = "latency", "Latency-aware: fastest recent deployment first"
        CATEGORY = "category", "By task category: cheapest deployment good enough for the task"

    alias = models.CharField(max_length=128, unique=True)
    description = models.CharField(max_length=500, blank=True, default="")
    strategy = models.CharField(max_length=16, choices=Strategy.choices, default=Strategy.ORDERED)
    # With the weighted strategy: the choice follows the end user, so each stays on one side.
    sticky = models.BooleanField(default=False)
    # Latency contract per attempt; when exceeded the next deployment is tried.
    timeout_seconds = models.FloatField(null=True, blank=True)
    first_token_timeout_seconds = models.FloatField(null=True, blank=True)

    class HostedTools(models.TextChoices):
        REFUSE = "refuse", "Refuse the request, naming the tool"
        DROP = "drop", "Leave the tool out, with a warning header and an audit note"

    # What a Responses request's provider-run tools (web_search, file_search, ...) get here: no
    # deployment behind the gateway's chat form runs them (docs/api.md#hosted-tools).
    hosted_tools = models.CharField(
        max_length=8, choices=HostedTools.choices, default=HostedTools.REFUSE
    )
    # Hosted tool types (web_search, file_search, ...) sent on to a deployment of the route that
    # speaks the Responses API natively, which runs them; deny by default (docs/api.md).
    forward_hosted_tools = models.JSONField(default=list, blank=True)

    class CacheMode(models.TextChoices):
        OFF = "off", "Off"
        EXACT = "exact", "Exact: the same request again"
        SEMANTIC = "semantic", "Semantic: the same request, or the same question in other words"

    class CacheScope(models.TextChoices):
        TENANT = "tenant", "Tenant"
        TEAM = "team", "Team"
        USER = "user", "End user"

    # Answers kept and served again (routing/cache/, docs/caching.md): opt-in per route, never
    # across tenants, narrowed to a team or an end user on request.
    cache_mode = models.CharField(max_length=8, choices=CacheMode.choices, default=CacheMode.OFF)
    cache_ttl_seconds = models.PositiveIntegerField(default=3600)
    cache_scope = models.CharField(
        max_length=8, choices=CacheScope.choices, default=CacheScope.TENANT
    )
    # Semantic mode: the least cosine similarity served (None: the calibrated default).
    cache_similarity = models.FloatField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.alias


class RouteTarget(models.Model):
    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="targets")
    deployment = models.ForeignKey(Deployment, on_delete=models.PROTECT, related_name="+")
    # Lower first: position 0 is the primary, the others are fallbacks in order.
    position = models.PositiveSmallIntegerField(default=0)
    weight = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(
                fields=["route", "deployment"], name="deployment_once_per_route"
            )
        ]

    def __str__(self) -> str:
        return f"route {self.route_id} #{self.position}: deployment {self.deployment_id}"
