"""Cache keys: what makes two requests the same question, and who may share the answer.

The exact key hashes the whole normalised request. The semantic partition hashes everything but
the wording of the last user message: only requests in the same partition are compared by
meaning, so a different model, tool set, temperature class, system prompt, prompt version or
conversation so far is never a candidate. Names, numbers and negation in the question are part
of the partition too: "the Smith account in 2024" never meets "the Jones account in 2023",
however close their embeddings are.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

from routing.core.types import JSON

PREFIX = "gwc"
# Fields that do not change the answer (how it is delivered, or who asked), left out of keys.
DELIVERY_FIELDS = frozenset(
    {
        "model",  # the route is in the key; the body's model is the route's name
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
    }
)
_TEMPERATURE_CLASSED = ("temperature", "top_p")


def digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def short(text: str) -> str:
    """A key part safe in a Redis pattern (no glob characters), for names chosen by users."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prompt_part(name: str, version: int | None) -> str:
    return f"p{short(name)}v{version}" if name else "p-"


def key_pattern(*, tenant_id: int | None, route: str | None, prompt: str | None) -> str:
    """A pattern over exact keys, for a purge; `prompt` is "name" or "name@version"."""
    prompt_glob = "*"
    if prompt:
        name, _, version = prompt.partition("@")
        prompt_glob = f"p{short(name)}v{version or '*'}"
    return ":".join(
        [
            PREFIX,
            f"t{tenant_id}" if tenant_id is not None else "*",
            f"r{short(route)}" if route is not None else "*",
            prompt_glob,
            "*",
        ]
    )


def _text(content: Any) -> Any:
    """A content list of text parts only is the same question as that text as a string."""
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" for p in content
    ):
        content = "".join(str(p.get("text") or "") for p in content)
    return content.strip() if isinstance(content, str) else content


def _message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    cleaned = {k: v for k, v in message.items() if v is not None}
    if "content" in cleaned:
        cleaned["content"] = _text(cleaned["content"])
    return cleaned


def normalised(payload: JSON) -> JSON:
    body = {k: v for k, v in payload.items() if k not in DELIVERY_FIELDS and v is not None}
    body["messages"] = [_message(m) for m in payload.get("messages") or ()]
    return body


def temperature_class(payload: JSON) -> str:
    """Answers sampled alike: deterministic (≤ 0.3), default (≤ 1.0), creative (above)."""
    value = payload.get("temperature")
    if not isinstance(value, int | float):
        return "default"
    return "deterministic" if value <= 0.3 else "default" if value <= 1.0 else "creative"


_WORD = re.compile(r"[\w][\w'\u2019.\-/]*")
_SENTENCE_END = re.compile(r"[.!?:;\n]\s*$")
_TITLE = re.compile(r"\b(?:mr|mrs|ms|dr|st|no)\.\s*$", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|no|never|without|none|nor)\b|n['\u2019]t\b", re.IGNORECASE)
_NOT_NAMES = frozenset({"i", "a", "mr", "mrs", "ms", "dr", "please", "ok"})


def literals(text: str) -> tuple[str, ...]:
    """The words a paraphrase must keep: numbers, codes, names (capitalised inside a sentence,
    or all capitals), lowercased and without a possessive."""
    found = set()
    for match in _WORD.finditer(text):
        word = match.group().rstrip(".-/")
        before = text[: match.start()]
        first = not before or (bool(_SENTENCE_END.search(before)) and not _TITLE.search(before))
        is_literal = (
            any(c.isdigit() for c in word)
            or (word[:1].isupper() and not first)
            or (len(word) > 1 and word.isupper())
        )
        if not is_literal:
            continue
        word = re.sub(r"['\u2019]s$", "", word.lower())
        if word not in _NOT_NAMES:
            found.add(word)
    return tuple(sorted(found))


def negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


@dataclass(frozen=True, slots=True)
class RequestKeys:
    exact: str  # the stored answer's key
    partition: str  # semantic candidates share it
    text: str  # the last user message: what the semantic cache compares by meaning


def _last_user(messages: list[Any]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, dict) and message.get("role") == "user":
            return index
    return None


def request_keys(
    *,
    tenant_id: int,
    scope: str,
    route: str,
    prompt_name: str,
    prompt_version: int | None,
    deployments: tuple[str, ...],
    payload: JSON,
) -> RequestKeys:
    """`scope`: "" (the tenant), or the team or end user the answers are kept for.

    `deployments` are those that may answer this request (after pins and residency): an answer
    given by a deployment outside them is never served to it."""
    body = normalised(payload)
    where = [tenant_id, scope, route, prompt_name, prompt_version, sorted(deployments)]
    exact = ":".join(
        [
            PREFIX,
            f"t{tenant_id}",
            f"r{short(route)}",
            prompt_part(prompt_name, prompt_version),
            digest([where, body]),
        ]
    )
    messages = body["messages"]
    last = _last_user(messages)
    text = ""
    if last is not None and isinstance(messages[last].get("content"), str):
        text = messages[last]["content"]
    context = {k: v for k, v in body.items() if k not in _TEMPERATURE_CLASSED}
    context["messages"] = [m for i, m in enumerate(messages) if i != last]
    context["temperature_class"] = temperature_class(payload)
    partition = digest([where, context, literals(text), negated(text)]) if text else ""
    return RequestKeys(exact=exact, partition=partition, text=text)
