from django.apps import AppConfig


class McpGatewayConfig(AppConfig):
    name = "routing.mcp_gateway"
    label = "mcp_gateway"
    verbose_name = "MCP gateway"

    def ready(self) -> None:
        from gateway_site.console.nav import NavEntry, nav_register

        nav_register(NavEntry("Administration", "MCP tools", "mcp:overview", 55))
