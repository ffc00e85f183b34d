"""Upstream MCP servers a tenant's agents may reach, and who may call which of their tools."""

from django.db import models

from audit.models import MCP_TOOL_CALL_ENDPOINT
from gateway_site.crypto import decrypt_secret, encrypt_secret

# "server__tool" is how agents see a tool: a server name never holds the separator.
TOOL_SEPARATOR = "__"
# The audit records of tool calls name this endpoint (the console lists them by it).
ENDPOINT = MCP_TOOL_CALL_ENDPOINT
SERVER_NAME = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"
# In `McpServer.tool_prices`: the price of every tool the mapping does not name.
EVERY_TOOL = "*"
# RFC 8693 token types a subject token may be declared as.
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a name
SUBJECT_TOKEN_TYPES = (
    ACCESS_TOKEN_TYPE,
    "urn:ietf:params:oauth:token-type:id_token",
    "urn:ietf:params:oauth:token-type:jwt",
)


class ResultInjection(models.TextChoices):
    BLOCK = "block", "Block the result"
    FLAG = "flag", "Pass it on, marked as untrusted"


class McpServer(models.Model):
    """A remote MCP server (Streamable HTTP only: the gateway never launches a process)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=64)
    url = models.URLField(max_length=500)
    # Fernet token (gateway_site/crypto.py); sent upstream, never shown to an agent.
    credential_encrypted = models.TextField(blank=True, default="")
    # The header the credential goes in; "authorization" sends "Bearer <credential>".
    credential_header = models.CharField(max_length=64, default="authorization")
    timeout_seconds = models.FloatField(default=30)
    # A result larger than this (as the server sent it) is refused, not passed on.
    max_result_bytes = models.PositiveIntegerField(default=256 * 1024)
    result_injection = models.CharField(
        max_length=8, choices=ResultInjection.choices, default=ResultInjection.BLOCK
    )
    # {tool: "USD per call"} ("*": every tool not named). A priced call is reserved in the
    # tenant's, team's and key's budgets before it goes upstream and charged like model cost.
    tool_prices = models.JSONField(default=dict, blank=True)
    # On behalf of the caller (RFC 8693): with a token endpoint set, each call sends upstream a
    # token exchanged for the end user's own (docs/mcp.md, "Per-user OAuth"), not `credential`.
    exchange_token_url = models.URLField(max_length=500, blank=True, default="")
    exchange_client_id = models.CharField(max_length=200, blank=True, default="")
    # Fernet token, like `credential_encrypted`: sent to the token endpoint only.
    exchange_client_secret_encrypted = models.TextField(blank=True, default="")
    exchange_audience = models.CharField(max_length=500, blank=True, default="")
    exchange_scope = models.CharField(max_length=500, blank=True, default="")
    exchange_subject_token_type = models.CharField(max_length=100, default=ACCESS_TOKEN_TYPE)
    # As the gateway itself (RFC 6749 §4.4 client credentials): with a token endpoint set, each
    # call sends upstream an access token the gateway obtained with its client id and secret
    # (docs/mcp.md, "Upstream credentials"), held per worker until shortly before it expires.
    oauth_token_url = models.URLField(max_length=500, blank=True, default="")
    oauth_client_id = models.CharField(max_length=200, blank=True, default="")
    # Fernet token, like `credential_encrypted`: sent to the token endpoint only.
    oauth_client_secret_encrypted = models.TextField(blank=True, default="")
    oauth_scope = models.CharField(max_length=500, blank=True, default="")
    oauth_audience = models.CharField(max_length=500, blank=True, default="")
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="mcp_server_tenant_name")
        ]

    def __str__(self) -> str:
        return self.name

    def set_credential(self, plain: str) -> None:
        self.credential_encrypted = encrypt_secret(plain) if plain else ""

    def get_credential(self) -> str:
        return decrypt_secret(self.credential_encrypted) if self.credential_encrypted else ""

    def get_exchange_client_secret(self) -> str:
        secret = self.exchange_client_secret_encrypted
        return decrypt_secret(secret) if secret else ""

    def get_oauth_client_secret(self) -> str:
        secret = self.oauth_client_secret_encrypted
        return decrypt_secret(secret) if secret else ""


class McpToolGrant(models.Model):
    """Which tools of a server a team (or one key) may call; nothing is allowed without one.

    A key's grants narrow its team's: a key with grants of its own reaches only the servers they
    name, and there only what both allow."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="grants")
    team = models.ForeignKey(
        "tenants.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    api_key = models.ForeignKey(
        "tenants.ApiKey", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Upstream tool names, or ["*"] for every tool the server lists.
    tools = models.JSONField(default=list)
    # Per tool, per key: calls in any 60 s; None: no limit of its own.
    calls_per_minute = models.PositiveIntegerField(null=True, blank=True)
    # {tool: {argument: [allowed values]}}: e.g. a query tool only with mode "read".
    argument_constraints = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(team__isnull=False, api_key__isnull=True)
                | models.Q(team__isnull=True, api_key__isnull=False),
                name="mcp_grant_team_or_key",
            ),
            models.UniqueConstraint(fields=["server", "team"], name="mcp_grant_server_team"),
            models.UniqueConstraint(fields=["server", "api_key"], name="mcp_grant_server_key"),
        ]

    def __str__(self) -> str:
        return f"{self.server.name}: {', '.join(self.tools)}"
