from django.apps import AppConfig


class McpGatewayConfig(AppConfig):
    name = "routing.mcp_gateway"
    label = "mcp_gateway"
    verbose_name = "MCP gateway"

    def ready(self) -> None:
        from routing.mcp_gateway.services import key_grants_carry
        from tenants.signals import key_rotated

        key_rotated.connect(key_grants_carry, dispatch_uid="mcp.key_grants_carry")
        from gateway_site.console.nav import NavEntry, nav_register

        nav_register(NavEntry("Administration", "MCP tools", "mcp:overview", 55))
