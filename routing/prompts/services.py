"""Writes for the prompt registry. Console, YAML and any API call these, with the real actor.

Versions are content-addressed per prompt: publishing content identical to an existing version
returns that version, so applying the same YAML twice publishes nothing new.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import orjson
from django.db import IntegrityError, transaction

from audit.activity.services import Actor, activity_record
from routing.prompts.models import (
    LABEL_PATTERN,
    NAME_PATTERN,
    LabelMove,
    Prompt,
    PromptLabel,
    PromptPin,
    PromptVersion,
)
from routing.prompts.render import TEMPLATE_ROLES, template_variables
from tenants.models import ApiKey, Team, Tenant

# Request fields a version may set as defaults; `model`, `messages` and `stream` stay the caller's.
PARAMETERS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "stop",
        "seed",
        "response_format",
        "tools",
        "tool_choice",
        "reasoning_effort",
    }
)


class PromptError(ValueError):
    """A registry change that cannot be made; the message says why, for the person making it."""


def _check_name(name: str) -> None:
    if not re.match(NAME_PATTERN, name) or len(name) > 128:
        raise PromptError(
            f"'{name}' is not a valid prompt name: letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 128 characters."
        )


def _check_label(name: str) -> None:
    if not re.match(LABEL_PATTERN, name) or len(name) > 64:
        raise PromptError(
            f"'{name}' is not a valid label: lower-case letters, digits, '_' and '-', "
            "not only digits (those name versions), at most 64 characters."
        )


def _clean_messages(messages: Any) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise PromptError("A prompt version needs at least one message.")
    cleaned = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            raise PromptError(f"Message {index + 1} must have exactly a role and a content.")
        role, content = message.get("role"), message.get("content")
        if role not in TEMPLATE_ROLES:
            raise PromptError(
                f"Message {index + 1} has role {role!r}; use one of {', '.join(TEMPLATE_ROLES)}."
            )
        if not isinstance(content, str) or not content.strip():
            raise PromptError(f"Message {index + 1} needs a non-empty text content.")
        cleaned.append({"role": role, "content": content})
    return cleaned


def _clean_parameters(parameters: Any) -> dict[str, Any]:
    if not isinstance(parameters, dict):
        raise PromptError("Model parameters must be a mapping.")
    unknown = sorted(set(parameters) - PARAMETERS)
    if unknown:
        raise PromptError(
            f"Unknown model parameter(s) {', '.join(unknown)}; allowed: {', '.join(sorted(PARAMETERS))}."
        )
    try:
        # Sent on to providers as JSON (and hashed with orjson): no NaN or Infinity, and no
        # integer past 64 bits.
        json.dumps(parameters, allow_nan=False)
        orjson.dumps(parameters)
    except (ValueError, TypeError) as exc:  # orjson.JSONEncodeError is a TypeError
        raise PromptError(f"Model parameters must be plain JSON values: {exc}.") from None
    return dict(parameters)


def content_hash(*, messages: list[dict[str, str]], parameters: dict[str, Any], model: str) -> str:
    canonical = orjson.dumps(
        {"messages": messages, "parameters": parameters, "model": model},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(canonical).hexdigest()


class PromptExists(PromptError):
    """A create whose name is taken: nothing was changed."""


@transaction.atomic
def prompt_create(*, actor: Actor, tenant: Tenant, name: str, description: str = "") -> Prompt:
    _check_name(name)
    taken = PromptExists(
        f"This tenant already has a prompt named '{name}': choose another name, or publish a "
        "new version of that prompt."
    )
    if Prompt.objects.filter(tenant=tenant, name=name).exists():
        raise taken
    try:
        with transaction.atomic():
            prompt = Prompt.objects.create(tenant=tenant, name=name, description=description)
    except IntegrityError as exc:
        raise taken from exc
    activity_record(
        actor=actor,
        action="prompt.create",
        target=prompt,
        tenant_id=tenant.pk,
        details={"description": description},
    )
    return prompt


@transaction.atomic
def prompt_update(*, actor: Actor, prompt: Prompt, description: str) -> Prompt:
    if prompt.description != description:
        prompt.description = description
        prompt.save(update_fields=["description"])
        activity_record(
            actor=actor,
            action="prompt.update",
            target=prompt,
            tenant_id=prompt.tenant_id,
            details={"description": description},
        )
    return prompt


def prompt_declare(*, actor: Actor, tenant: Tenant, name: str, description: str = "") -> Prompt:
    """The declarative config's prompt: created when missing, its description kept in step."""
    prompt = Prompt.objects.filter(tenant=tenant, name=name).first()
    if prompt is None:
        return prompt_create(actor=actor, tenant=tenant, name=name, description=description)
    return prompt_update(actor=actor, prompt=prompt, description=description)


@transaction.atomic
def prompt_publish(
    *,
    actor: Actor,
    prompt: Prompt,
    messages: Any,
    parameters: Any = None,
    model: str = "",
    note: str = "",
) -> tuple[PromptVersion, bool]:
    """Publish a new version, or return the existing one with identical content (and False)."""
    cleaned = _clean_messages(messages)
    params = _clean_parameters(parameters or {})
    if len(model) > 200 or len(note) > 500:
        raise PromptError("The model is limited to 200 characters and the note to 500.")
    digest = content_hash(messages=cleaned, parameters=params, model=model)
    # Numbers are handed out one at a time per prompt.
    locked = Prompt.objects.select_for_update().get(pk=prompt.pk)
    existing = PromptVersion.objects.filter(prompt=locked, content_hash=digest).first()
    if existing is not None:
        return existing, False
    last = PromptVersion.objects.filter(prompt=locked).order_by("-number").first()
    version = PromptVersion.objects.create(
        prompt=locked,
        number=(last.number + 1) if last else 1,
        messages=cleaned,
        variables=template_variables(cleaned),
        parameters=params,
        model=model,
        content_hash=digest,
        note=note,
        author_id=actor.user_id,
        author_label=actor.label[:200],
    )
    activity_record(
        actor=actor,
        action="prompt.publish",
        target=version,
        tenant_id=locked.tenant_id,
        details={"prompt": locked.name, "version": version.number, "note": note},
    )
    return version, True


def _version(prompt: Prompt, number: int) -> PromptVersion:
    version = PromptVersion.objects.filter(prompt=prompt, number=number).first()
    if version is None:
        raise PromptError(f"Prompt '{prompt.name}' has no version {number}.")
    return version


@transaction.atomic
def prompt_label_move(
    *,
    actor: Actor,
    prompt: Prompt,
    label: str,
    version: int,
    canary_version: int | None = None,
    canary_percent: int = 0,
    note: str = "",
    is_rollback: bool = False,
) -> PromptLabel:
    """Point a label at a version (optionally with a canary share); unchanged targets are a no-op."""
    _check_label(label)
    if canary_version is None or canary_percent == 0:
        canary_version, canary_percent = None, 0
    if not 0 <= canary_percent <= 100:
        raise PromptError("A canary share is a percentage between 0 and 100.")
    if canary_version == version:
        raise PromptError("A canary must be a different version from the one the label points at.")
    target = _version(prompt, version)
    canary = _version(prompt, canary_version) if canary_version is not None else None
    current = PromptLabel.objects.select_for_update().filter(prompt=prompt, name=label).first()
    before = (
        (current.version.number, _number(current.canary_version), current.canary_percent)
        if current
        else (None, None, 0)
    )
    after = (version, canary_version, canary_percent)
    if current is not None and before == after:
        return current
    if current is None:
        current = PromptLabel(prompt=prompt, name=label)
    current.version, current.canary_version, current.canary_percent = target, canary, canary_percent
    current.save()
    LabelMove.objects.create(
        label=current,
        from_version=before[0],
        from_canary_version=before[1],
        from_canary_percent=before[2],
        to_version=version,
        to_canary_version=canary_version,
        to_canary_percent=canary_percent,
        actor_kind=actor.kind,
        actor_user_id=actor.user_id,
        actor_label=actor.label[:200],
        is_rollback=is_rollback,
        note=note[:500],
    )
    activity_record(
        actor=actor,
        action="prompt.label_rollback" if is_rollback else "prompt.label_move",
        target=current,
        tenant_id=prompt.tenant_id,
        details={
            "prompt": prompt.name,
            "label": label,
            "from": {"version": before[0], "canary": before[1], "percent": before[2]},
            "to": {"version": version, "canary": canary_version, "percent": canary_percent},
            "note": note,
        },
    )
    return current


def _number(version: PromptVersion | None) -> int | None:
    return version.number if version is not None else None


@transaction.atomic
def prompt_label_rollback(*, actor: Actor, label: PromptLabel, note: str = "") -> PromptLabel:
    """Move a label back to where it pointed before its last move: one action, recorded."""
    last = label.moves.order_by("-moved_at", "-id").first()
    if last is None or last.from_version is None:
        raise PromptError(f"{label} has never moved: there is nothing to roll back to.")
    return prompt_label_move(
        actor=actor,
        prompt=label.prompt,
        label=label.name,
        version=last.from_version,
        canary_version=last.from_canary_version,
        canary_percent=last.from_canary_percent,
        note=note or f"rollback from v{last.to_version}",
        is_rollback=True,
    )


@transaction.atomic
def prompt_pin_set(
    *,
    actor: Actor,
    prompt: Prompt,
    version: int,
    team: Team | None = None,
    api_key: ApiKey | None = None,
) -> PromptPin:
    """Hold a key or a team to one version of a prompt (regulated use cases)."""
    if (team is None) == (api_key is None):
        raise PromptError("Pin a prompt either for a key or for a team.")
    holder = team or api_key
    assert holder is not None
    if holder.tenant_id != prompt.tenant_id:
        raise PromptError("The key or team belongs to another tenant.")
    target = _version(prompt, version)
    pin = PromptPin.objects.filter(prompt=prompt, team=team, api_key=api_key).first()
    if pin is not None and pin.version_id == target.pk:
        return pin
    pin = pin or PromptPin(prompt=prompt, team=team, api_key=api_key, tenant_id=prompt.tenant_id)
    pin.version = target
    pin.save()
    activity_record(
        actor=actor,
        action="prompt.pin",
        target=pin,
        tenant_id=prompt.tenant_id,
        details={
            "prompt": prompt.name,
            "version": version,
            "team": team.slug if team else None,
            "key": api_key.name if api_key else None,
        },
    )
    return pin


@transaction.atomic
def prompt_pin_clear(*, actor: Actor, pin: PromptPin) -> None:
    details = {"prompt": pin.prompt.name, "version": pin.version.number}
    activity_record(
        actor=actor, action="prompt.unpin", target=pin, tenant_id=pin.tenant_id, details=details
    )
    pin.delete()


def key_pins_carry(*, key: ApiKey, successor: ApiKey, **_: Any) -> None:
    """A rotated key's successor is held to the same prompt versions (tenants.signals)."""
    for pin in PromptPin.objects.filter(api_key=key):
        pin.pk = None
        pin.api_key = successor
        pin.save()
