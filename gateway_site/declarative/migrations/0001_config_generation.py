"""A number that every write to the configuration tables raises, in the writing transaction.

Each worker holds the configuration in memory (gateway_site/snapshot.py) and used to reload all
of it every two seconds; now it reads this one number every two seconds and reloads only when it
moved. Triggers, not Django signals, raise it: a bulk update, a raw statement or a console edit
all count. A table a snapshot reads without a trigger fails tests/test_config_generation.py.
"""

from django.db import migrations

# Every table a worker's snapshots read (routing table, limits, guardrail policies, MCP tools,
# prompts) as of this migration; a later table gets its trigger in a later migration.
TABLES = (
    "billing_price",
    "evaluations_evalrun",
    "evaluations_evalscore",
    "evaluations_taskcategory",
    "routing_deployment",
    "routing_provider",
    "routing_route",
    "routing_routetarget",
    "quotas_approvalrule",
    "quotas_budget",
    "quotas_quotapolicy",
    "quotas_ratelimit",
    "tenants_apikey",
    "tenants_team",
    "tenants_tenant",
    "guardrails_guardrailpolicy",
    "guardrails_policyattachment",
    "guardrails_quarantinereview",
    "mcp_gateway_mcpserver",
    "mcp_gateway_mcptoolgrant",
    "prompts_prompt",
    "prompts_promptlabel",
    "prompts_promptpin",
    "prompts_promptversion",
)

POSTGRES_FUNCTION = """
CREATE FUNCTION gateway_config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE gateway_config_generation SET value = value + 1 WHERE id = 1;
    RETURN NULL;
END $$;
"""


def triggers_for(vendor: str, table: str) -> list[str]:
    if vendor == "postgresql":
        return [
            f"CREATE TRIGGER {table}_config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION gateway_config_changed()"
        ]
    # SQLite has row triggers only: one per kind of write.
    return [
        f"CREATE TRIGGER {table}_config_{event.lower()} AFTER {event} ON {table} "
        "BEGIN UPDATE gateway_config_generation SET value = value + 1 WHERE id = 1; END"
        for event in ("INSERT", "UPDATE", "DELETE")
    ]


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    schema_editor.execute(
        "CREATE TABLE gateway_config_generation (id integer PRIMARY KEY, value bigint NOT NULL)"
    )
    schema_editor.execute("INSERT INTO gateway_config_generation (id, value) VALUES (1, 0)")
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FUNCTION)
    for table in TABLES:
        for statement in triggers_for(vendor, table):
            schema_editor.execute(statement)


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER {table}_config_changed ON {table}")
        else:
            for event in ("insert", "update", "delete"):
                schema_editor.execute(f"DROP TRIGGER {table}_config_{event}")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION gateway_config_changed()")
    schema_editor.execute("DROP TABLE gateway_config_generation")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_rollup_routing_dimensions"),
        ("evaluations", "0001_initial"),
        ("routing", "0007_route_cache"),
        ("quotas", "0005_ratelimit_agent"),
        ("tenants", "0003_model_pins"),
        ("guardrails", "0002_policies_console_quarantine"),
        ("mcp_gateway", "0002_prices_token_exchange"),
        ("prompts", "0002_immutable_versions"),
    ]

    operations = [migrations.RunPython(create, drop)]
