"""Prompts in the declarative YAML (docs/config.md#prompts): schema and apply.

Versions are listed in order; labels and pins name a version by its position in that list (1 is
the first). Applying publishes each listed version unless identical content is already published,
so a file applied twice changes nothing, and editing a listed version publishes a new one rather
than touching the old.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from audit.activity.services import CONFIG
from routing.prompts import services
from routing.prompts.models import LABEL_PATTERN, NAME_PATTERN
from tenants.models import ApiKey, Team, Tenant

_LABEL = re.compile(LABEL_PATTERN)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PromptMessageSpec(_Strict):
    role: str
    content: str


class PromptVersionSpec(_Strict):
    # `template` is shorthand for a single system message.
    template: str | None = None
    messages: list[PromptMessageSpec] | None = None
    parameters: dict[str, Any] = {}
    model: str = ""
    note: str = ""

    @model_validator(mode="after")
    def _one_form(self) -> PromptVersionSpec:
        if (self.template is None) == (self.messages is None):
            raise ValueError("give a version either a 'template' or 'messages'")
        return self

    def message_list(self) -> list[dict[str, str]]:
        if self.template is not None:
            return [{"role": "system", "content": self.template}]
        return [m.model_dump() for m in self.messages or ()]


class CanarySpec(_Strict):
    version: int = Field(ge=1)
    percent: int = Field(ge=0, le=100)


class LabelSpec(_Strict):
    version: int = Field(ge=1)
    canary: CanarySpec | None = None


class PinSpec(_Strict):
    version: int = Field(ge=1)
    team: str | None = None
    key: str | None = None

    @model_validator(mode="after")
    def _key_or_team(self) -> PinSpec:
        if (self.team is None) == (self.key is None):
            raise ValueError("a pin names either a 'team' or a 'key'")
        return self


class PromptSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=128)
    description: str = ""
    versions: list[PromptVersionSpec] = Field(min_length=1)
    labels: dict[str, int | LabelSpec] = {}
    pins: list[PinSpec] = []

    @model_validator(mode="after")
    def _positions_exist(self) -> PromptSpec:
        count = len(self.versions)
        named = [(f"label {name!r}", spec) for name, spec in self.label_specs().items()]
        named += [
            (f"pin {pin.team or pin.key!r}", LabelSpec(version=pin.version)) for pin in self.pins
        ]
        for where, spec in named:
            for position in (spec.version, spec.canary.version if spec.canary else None):
                if position is not None and position > count:
                    raise ValueError(
                        f"prompt {self.name!r}: {where} names version {position}, "
                        f"but only {count} are listed"
                    )
        for label in self.labels:
            if not _LABEL.match(label):
                raise ValueError(f"prompt {self.name!r}: {label!r} is not a valid label name")
        return self

    def label_specs(self) -> dict[str, LabelSpec]:
        return {
            name: spec if isinstance(spec, LabelSpec) else LabelSpec(version=spec)
            for name, spec in self.labels.items()
        }


def prompts_apply(
    *, tenant: Tenant, specs: list[PromptSpec], teams: dict[str, Team], bump: Callable[[str], None]
) -> None:
    for spec in specs:
        prompt = services.prompt_declare(
            actor=CONFIG, tenant=tenant, name=spec.name, description=spec.description
        )
        numbers = []
        for version_spec in spec.versions:
            version, created = services.prompt_publish(
                actor=CONFIG,
                prompt=prompt,
                messages=version_spec.message_list(),
                parameters=version_spec.parameters,
                model=version_spec.model,
                note=version_spec.note,
            )
            numbers.append(version.number)
            if created:
                bump("prompt versions")
        for label, label_spec in spec.label_specs().items():
            canary = label_spec.canary
            services.prompt_label_move(
                actor=CONFIG,
                prompt=prompt,
                label=label,
                version=numbers[label_spec.version - 1],
                canary_version=numbers[canary.version - 1] if canary else None,
                canary_percent=canary.percent if canary else 0,
                note="declarative config",
            )
        for pin in spec.pins:
            services.prompt_pin_set(
                actor=CONFIG,
                prompt=prompt,
                version=numbers[pin.version - 1],
                team=_team(tenant, teams, pin.team) if pin.team else None,
                api_key=_key(tenant, pin.key) if pin.key else None,
            )
        bump("prompts")


def _team(tenant: Tenant, teams: dict[str, Team], slug: str) -> Team:
    team = teams.get(slug) or Team.objects.filter(tenant=tenant, slug=slug).first()
    if team is None:
        raise services.PromptError(
            f"a prompt pin names team {slug!r}, which the tenant does not have"
        )
    return team


def _key(tenant: Tenant, name: str) -> ApiKey:
    key = ApiKey.objects.filter(tenant=tenant, name=name, revoked_at__isnull=True).first()
    if key is None:
        raise services.PromptError(
            f"a prompt pin names key {name!r}, which the tenant does not have"
        )
    return key
