"""Which version pins an admin may set: the check shared by the management API and the console.

The services store any pin (the YAML may name a deployment before it exists, and a pin that the
route lost is answered with a 409 by the proxy); people setting pins by hand get told at once.
"""

from __future__ import annotations

from tenants.models import Tenant
from tenants.selectors import deployments_serving, models_usable


def pin_problems(
    *,
    model_pins: dict[str, str],
    tenant: Tenant,
    team_models: list[str],
    key_models: list[str] | None = None,
) -> dict[str, str]:
    """{model: why it cannot be pinned so}; empty when each pin names a version the proxy would
    serve that model with, for a key with these allowed lists (the team's: `key_models` None)."""
    usable = models_usable(tenant=tenant, team_models=team_models, key_models=key_models)
    problems: dict[str, str] = {}
    for model, version in model_pins.items():
        model, version = model.strip(), version.strip()
        if not model or not version:
            problems[model or "(empty)"] = "a pin maps a model name to a deployment name"
        elif model not in usable:
            problems[model] = f"'{model}' is not a model this team or key may use"
        else:
            problems.update(_version_problem(model, version))
    return problems


def _version_problem(model: str, version: str) -> dict[str, str]:
    deployments = deployments_serving(model=model)
    if any(version in (d.name, d.upstream_model) for d in deployments):
        return {}
    if not deployments:
        return {model: f"'{model}' has no live deployment now, so it cannot be pinned"}
    choices = ", ".join(f"{d.name} (upstream {d.upstream_model})" for d in deployments)
    return {model: f"'{model}' has no deployment '{version}'; pin one of: {choices}"}
