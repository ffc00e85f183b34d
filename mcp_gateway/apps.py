from django.apps import AppConfig


class McpGatewayConfig(AppConfig):
    name = "mcp_gateway"
    label = "mcp_gateway"
    verbose_name = "MCP gateway"
