"""The registry on the proxy's hot path: render a referenced prompt into the request.

One call from each chat flow (routing/pipeline.py). A request names a prompt with the header
`x-gateway-prompt: <name>[@<label>|@<version>]` or `metadata.prompt`, and passes its variables in
`prompt_variables`; see docs/api.md#prompts. A request without one still gets a fingerprint of its
own system prompt on its audit record, so a change to an unmanaged prompt shows up too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from routing.caller import END_USER_HEADER, Caller
from routing.core.types import JSON
from routing.errors import GatewayError
from routing.prompts.models import DEFAULT_LABEL
from routing.prompts.registry import PromptEntry, PromptTable, choose_version
from routing.prompts.render import MissingVariable, render_messages, system_fingerprint

PROMPT_HEADER = "x-gateway-prompt"
VARIABLES_FIELD = "prompt_variables"
_MAX_REFERENCE = 200


@dataclass(frozen=True, slots=True)
class PromptRef:
    """The registry prompt a request named, as far as it was resolved (its record's columns)."""

    name: str = ""
    version: int | None = None
    label: str = ""


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """The body to serve, the prompt rendered into it, and its own system prompt's fingerprint."""

    body: JSON
    prompt: PromptRef = PromptRef()
    fingerprint: str = ""


class PromptRefused(GatewayError):
    """A request that names a prompt it cannot use; the record still names what it asked for."""

    def __init__(self, prompt: PromptRef, status: int, message: str, **kwargs: Any) -> None:
        super().__init__(status, message, **kwargs)
        self.prompt = prompt


async def prompt_apply(caller: Caller, body: JSON, *, source: JSON | None = None) -> RenderedPrompt:
    """`body` with the named prompt rendered in front of its messages.

    `source` is the caller's body when `body` is a translation of it (Anthropic's Messages API):
    the reference and variables are read from there. Raises GatewayError (400/404) for a request
    that names a prompt it cannot use.
    """
    source = body if source is None else source
    reference, where = _reference(caller, source)
    variables = source.get(VARIABLES_FIELD)
    if VARIABLES_FIELD in body:
        body = {k: v for k, v in body.items() if k != VARIABLES_FIELD}
    own = system_fingerprint(body.get("messages")) or ""
    if not reference:
        if variables is not None:
            raise GatewayError(
                400,
                f"'{VARIABLES_FIELD}' was sent but no prompt was named: send the header "
                f"'{PROMPT_HEADER}: <name>@<label>' or 'metadata.prompt'.",
                code="prompt_not_named",
                param=VARIABLES_FIELD,
            )
        return RenderedPrompt(body, fingerprint=own)
    table = await caller.runtime.prompts.get()
    served, prompt = _render(caller, table, body, reference, where, _values(variables))
    return RenderedPrompt(served, prompt, own)


def _reference(caller: Caller, source: JSON) -> tuple[str, str]:
    header = caller.headers.get(PROMPT_HEADER, "").strip()
    if header:
        return header, PROMPT_HEADER
    metadata = source.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("prompt"), str):
        return metadata["prompt"].strip(), "metadata.prompt"
    return "", ""


def _values(variables: Any) -> dict[str, str]:
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        raise GatewayError(
            400,
            f"'{VARIABLES_FIELD}' must be an object of variable names to values.",
            code="invalid_value",
            param=VARIABLES_FIELD,
        )
    values = {}
    for name, value in variables.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise GatewayError(
                400,
                f"Prompt variable '{name}' must be a string or a number.",
                code="invalid_value",
                param=f"{VARIABLES_FIELD}.{name}",
            )
        values[name] = str(value)
    return values


def _render(
    caller: Caller,
    table: PromptTable,
    body: JSON,
    reference: str,
    where: str,
    values: dict[str, str],
) -> tuple[JSON, PromptRef]:
    name, _, selector = reference.partition("@")
    selector = selector or DEFAULT_LABEL
    if not name or len(reference) > _MAX_REFERENCE:
        raise GatewayError(
            400,
            f"'{where}' must be '<prompt>', '<prompt>@<label>' or '<prompt>@<version>'.",
            code="invalid_prompt_reference",
            param=where,
        )
    identity = caller.identity
    asked = PromptRef(name[:128])
    prompt = table.prompts.get((identity.tenant_id, name))
    if prompt is None:
        raise PromptRefused(
            asked,
            404,
            f"No prompt named '{name}' in your tenant.",
            code="prompt_not_found",
            param=where,
        )
    # The same end user the audit record names (routing/call.py), for a sticky canary.
    end_user = caller.headers.get(END_USER_HEADER, "").strip() or str(body.get("user") or "")
    number, label = _pick(caller, table, prompt, selector, asked, where, end_user)
    chosen = PromptRef(asked.name, number, label)
    version = prompt.versions[number]
    try:
        rendered = render_messages(version.messages, values)
    except MissingVariable as missing:
        raise PromptRefused(
            chosen,
            400,
            f"Prompt '{name}' version {number} needs the variable '{missing.name}': send it in "
            f"'{VARIABLES_FIELD}'.",
            code="prompt_variable_missing",
            param=f"{VARIABLES_FIELD}.{missing.name}",
        ) from None
    own = body.get("messages")
    if own is not None and not isinstance(own, list):
        raise PromptRefused(
            chosen,
            400,
            "Invalid request at 'messages': must be a list.",
            code="invalid_value",
            param="messages",
        )
    served = {**version.parameters, **body}
    served["messages"] = [*rendered, *(own or ())]
    if not body.get("model") and version.model:
        served["model"] = version.model
    return served, chosen


def _pick(
    caller: Caller,
    table: PromptTable,
    prompt: PromptEntry,
    selector: str,
    asked: PromptRef,
    where: str,
    end_user: str,
) -> tuple[int, str]:
    """Which version serves this request, and the label it is recorded under."""
    identity = caller.identity
    # A pin (key first, then team) holds the caller to one version whatever it asks for.
    pinned = table.key_pins.get((identity.key_id, prompt.name))
    if pinned is not None:
        return pinned, "pin:key"
    pinned = table.team_pins.get((identity.team_id, prompt.name))
    if pinned is not None:
        return pinned, "pin:team"
    if selector.isascii() and selector.isdigit():  # not "²" (`int` refuses it) nor "٢"
        number = int(selector)
        if number not in prompt.versions:
            raise PromptRefused(
                asked,
                404,
                f"Prompt '{prompt.name}' has no version {number}.",
                code="prompt_version_not_found",
                param=where,
            )
        return number, ""
    label = prompt.labels.get(selector)
    if label is None:
        raise PromptRefused(
            asked,
            404,
            f"Prompt '{prompt.name}' has no label '{selector}'.",
            code="prompt_label_not_found",
            param=where,
        )
    sticky = f"{identity.tenant_id}\0{prompt.name}\0{selector}"
    return choose_version(label, sticky_key=sticky, end_user=end_user), selector
