from __future__ import annotations

from typing import Any

import pytest

from audit.activity.services import Actor
from routing.prompts import services
from routing.prompts.models import Prompt
from tenants.models import Tenant
from tests.support.world import build_tenant

OPERATOR = Actor("user", "ops-lead")


@pytest.fixture
def tenant(db: Any) -> Tenant:
    return build_tenant("prompt-co").tenant


@pytest.fixture
def prompt(tenant: Tenant) -> Prompt:
    return services.prompt_declare(actor=OPERATOR, tenant=tenant, name="advisor")


def publish(prompt: Prompt, text: str, **kwargs: Any) -> int:
    version, _ = services.prompt_publish(
        actor=OPERATOR, prompt=prompt, messages=[{"role": "system", "content": text}], **kwargs
    )
    return version.number
