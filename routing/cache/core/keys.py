"""Cache keys: what makes two requests the same question, and who may share the answer.

The exact key hashes the whole normalised request. The semantic partition hashes everything but
the wording of the last user message: only requests in the same partition are compared by
meaning, so a different model, tool set, temperature class, system prompt, prompt version or
conversation so far is never a candidate. Names, numbers, negation and contrasting words
("buy"/"sell", "last year"/"this year") in the question are part of the partition too: "the
Smith account in 2024" never meets "the Jones account in 2023", nor "should I buy" "should I
sell", however close their embeddings are.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

JSON = dict[str, Any]

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


def temperature_class(payload: JSON, field: str = "temperature") -> str:
    """Answers sampled alike: deterministic (≤ 0.3), default (≤ 1.0), creative (above); the same
    classes for `top_p` (a narrow nucleus samples as deterministically as a low temperature)."""
    value = payload.get(field)
    if not isinstance(value, int | float):
        return "default"
    return "deterministic" if value <= 0.3 else "default" if value <= 1.0 else "creative"


_WORD = re.compile(r"[\w][\w'\u2019.\-/]*")
_SENTENCE_END = re.compile(r"[.!?:;\n]\s*$")
_TITLE = re.compile(r"\b(?:mr|mrs|ms|dr|st|no)\.\s*$", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|no|never|without|none|nor)\b|n['\u2019]t\b", re.IGNORECASE)
_NOT_NAMES = frozenset({"i", "a", "mr", "mrs", "ms", "dr", "please", "ok"})


def literals(text: str) -> tuple[str, ...]:
    """The words a paraphrase must keep, in the order they first come: numbers, codes, names
    (capitalised inside a sentence, or all capitals), lowercased, without a possessive. Order
    counts: "a traditional IRA to a Roth" is not "a Roth IRA to a traditional IRA"."""
    found: dict[str, None] = {}
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
            found.setdefault(word)
    return tuple(found)


def negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


# Words whose opposite reads almost the same to an embedding ("buy"/"sell", "rise"/"fall"):
# each maps to its side, and the sides a question names, in order, must match.
_SIDES = {
    "up": "rise rises rising rose risen increase increases increasing increased raise raised "
    "up higher gain gains gained gainers grow grew",
    "down": "fall falls falling fell fallen decrease decreases decreasing decreased reduce "
    "reduced down lower drop drops dropped decline declines declined losers lose loses lost "
    "loss losses",
    "buy": "buy buys buying bought purchase purchases purchased",
    "sell": "sell sells selling sold sale sales",
    "open": "open opens opening opened",
    "close": "close closes closing closed",
    "add": "add adds adding added",
    "remove": "remove removes removing removed delete",
    "in": "deposit deposits deposited contribute contributes contributed contribution "
    "contributions",
    "out": "withdraw withdraws withdrawal withdrawals withdrew distribution distributions",
    "most": "maximum max most highest largest biggest best top",
    "least": "minimum min least lowest smallest worst bottom",
    "pro": "advantage advantages benefit benefits pros upside",
    "con": "disadvantage disadvantages drawback drawbacks cons downside risks",
    "short": "short-term",
    "long": "long-term",
    "enable": "enable enables enabled",
    "disable": "disable disables disabled",
    "over": "overvalued overpriced",
    "under": "undervalued underpriced",
    "paper": "paper",
    "paperless": "paperless electronic",
    "checking": "checking",
    "savings": "savings",
    "today": "today today's",
    "yesterday": "yesterday yesterday's",
    "tomorrow": "tomorrow tomorrow's",
}
_SIDE_OF = {word: side for side, words in _SIDES.items() for word in words.split()}
_PERIOD = re.compile(
    r"\b(this|current|last|previous|past|next)\s+(day|week|month|quarter|year)\b", re.IGNORECASE
)
_RELATIVE = {"current": "this", "previous": "last", "past": "last"}


def _side_words(text: str) -> list[str]:
    words: list[str] = []
    for word in _WORD.findall(text.lower()):
        word = word.rstrip(".-/")
        # "highest-yielding" is "highest" here; "short-term" is a side of its own.
        words.extend([word] if word in _SIDE_OF else word.split("-"))
    return words


def sides(text: str) -> tuple[str, ...]:
    """The contrasting words of a question, as their sides, in order, with relative periods."""
    found = [side for word in _side_words(text) if (side := _SIDE_OF.get(word))]
    for relative, unit in _PERIOD.findall(text.lower()):
        found.append(f"{_RELATIVE.get(relative, relative)}-{unit}")
    return tuple(found)


# How a question is asked, not what it asks: left out of what is embedded, so "Explain what an
# annuity is." and "What is an annuity?" compare on "annuity" (negation is in the partition).
_FRAMING = frozenset(
    """
    a an the of to in on for at by with from about into and or as is are was were be been being
    am do does did can could would should will shall may might must please kindly me my i we us
    our you your it its this that these those there here what which how explain describe
    tell show give list summarise summarize summary provide write draft help know let want
    need mean means meaning define definition just also some any
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def meaning(text: str) -> str:
    """The words a question's meaning rests on, in order, for the embedder."""
    words = [w for w in _WORD.findall(text.lower()) if w.rstrip(".-/") not in _FRAMING]
    return " ".join(words) or text


_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "ed", "es", "s", "ly", "ment")


def _stem(word: str) -> str:
    word = re.sub(r"['\u2019]s?$", "", word.rstrip(".-/"))
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def terms(meaning_text: str) -> frozenset[str]:
    """A question's meaning words, stemmed: what two questions are compared on word by word."""
    return frozenset(_stem(word) for word in meaning_text.split())


def one_word_swapped(a: frozenset[str], b: frozenset[str]) -> bool:
    """Two questions the same but for one word each ("technology" / "energy" stocks, "gross" /
    "net" return): a different question, however alike their embeddings. A paraphrase rewords
    more than that, or only adds or drops a word."""
    return len(a - b) == 1 and len(b - a) == 1


@dataclass(frozen=True, slots=True)
class RequestKeys:
    exact: str  # the stored answer's key
    partition: str  # semantic candidates share it
    text: str  # the last user message's meaning words: what the semantic cache embeds
    terms: frozenset[str] = frozenset()  # those words, stemmed (see one_word_swapped)


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
    context["top_p_class"] = temperature_class(payload, "top_p")
    guard = [literals(text), negated(text), sides(text)]
    partition = digest([where, context, guard]) if text else ""
    words = meaning(text) if text else ""
    return RequestKeys(exact=exact, partition=partition, text=words, terms=terms(words))
