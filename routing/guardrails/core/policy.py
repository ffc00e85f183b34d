"""A guardrail policy: its declarative form (YAML and the database hold the same JSON) and the
compiled form the hot path uses, plus how several attached policies combine.

Several policies can apply to one request (its tenant's, team's, key's and route's). They are
combined so that the strictest wins: a team policy cannot weaken what the tenant enforces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PiiAction = Literal["mask", "block", "flag"]
InjectionAction = Literal["block", "quarantine", "route", "flag"]
ImageAction = Literal["mask", "refuse", "record"]
ImageFallback = Literal["refuse", "record"]
RuleAction = Literal["block", "flag"]

# Structured PII Presidio finds offline (pattern and checksum recognizers), masked by default
# when a policy turns PII on without listing entities.
DEFAULT_PII_ENTITIES: tuple[str, ...] = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
)
_PII_STRICTNESS = {"flag": 0, "mask": 1, "block": 2}
_INJECTION_STRICTNESS = {"flag": 0, "route": 1, "quarantine": 2, "block": 3}
_IMAGE_STRICTNESS = {"record": 0, "mask": 1, "refuse": 2}


def _valid_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc}): {pattern!r}") from exc
    return pattern


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecognizerSpec(_Strict):
    """A tenant-defined recognizer, e.g. internal account numbers."""

    entity: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$", max_length=40)
    pattern: str = Field(min_length=1, max_length=500)
    score: float = Field(default=0.9, gt=0, le=1)

    _check = field_validator("pattern")(_valid_regex)


class PiiSpec(_Strict):
    # Entity type -> action; empty means DEFAULT_PII_ENTITIES, all masked.
    entities: dict[str, PiiAction] = {}
    # Put the original values back in the answer (within this request only).
    restore: bool = False
    # Mask PII the model writes in its answer too.
    in_responses: bool = False
    min_score: float = Field(default=0.4, ge=0, le=1)
    recognizers: list[RecognizerSpec] = []


class InjectionSpec(_Strict):
    action: InjectionAction = "block"
    threshold: float = Field(default=0.5, gt=0, le=1)
    # With action "route": the restricted route alias the request is sent to instead. With
    # "quarantine": held for review and refused, or (with a route) sent there while held.
    route: str = ""
    # Their scores combine into one (routing/guardrails/core/injection.py) compared with `threshold`.
    # "rules": the named patterns; "classifier": the n-gram model (docs/injection-classifier.md).
    detectors: list[str] = ["rules", "classifier"]

    @model_validator(mode="after")
    def _route_named(self) -> InjectionSpec:
        if self.action == "route" and not self.route:
            raise ValueError("action 'route' needs a route alias")
        return self


class ImageSpec(_Strict):
    """Images in requests: OCR (tesseract) and the policy's PII entities on the text found."""

    # mask: the PII's boxes painted over before forwarding; refuse: the request is refused;
    # record: forwarded as sent, the finding recorded.
    action: ImageAction = "mask"
    # When an image cannot be read (no OCR on the machine, a remote URL, not an image).
    fallback: ImageFallback = "refuse"


class OutputRuleSpec(_Strict):
    name: str = Field(min_length=1, max_length=64)
    category: str = Field(default="custom", max_length=64)
    terms: list[str] = []
    patterns: list[str] = []
    action: RuleAction = "block"

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        return [_valid_regex(p) for p in patterns]


class OutputSpec(_Strict):
    rules: list[OutputRuleSpec] = []
    # Streams: characters held back so a term split across chunks is caught before any of it
    # reaches the client (the longest term or match the rules can catch).
    window_chars: int = Field(default=64, ge=8, le=2048)


class StructuredOutputSpec(_Strict):
    # A schema the route's answers must follow even when the request does not ask for one.
    json_schema: dict[str, Any] | None = None
    retries: int = Field(default=1, ge=0, le=3)
    fallback: bool = True


class PolicySpec(_Strict):
    pii: PiiSpec | None = None
    injection: InjectionSpec | None = None
    images: ImageSpec | None = None
    output: OutputSpec | None = None
    structured_output: StructuredOutputSpec | None = None


# --- compiled form ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomRecognizer:
    entity: str
    regex: re.Pattern[str]
    score: float


@dataclass(frozen=True, slots=True)
class OutputRule:
    policy: str
    name: str
    category: str
    action: RuleAction
    regex: re.Pattern[str]
    # Longest literal term; a stream's hold-back window must be at least this long.
    longest_term: int


@dataclass(frozen=True, slots=True)
class Decision:
    """An action and the policy it comes from (errors and findings name the policy)."""

    action: str
    policy: str


@dataclass(frozen=True, slots=True)
class InjectionSettings:
    action: InjectionAction
    threshold: float
    route: str
    detectors: tuple[str, ...]
    policy: str


@dataclass(frozen=True, slots=True)
class ImageSettings:
    action: ImageAction
    fallback: ImageFallback
    policy: str


@dataclass(frozen=True, slots=True)
class StructuredSettings:
    json_schema: Mapping[str, Any] | None
    retries: int
    fallback: bool
    policy: str


@dataclass(frozen=True, slots=True)
class Policy:
    """What the guardrails do for one request: every attached policy, combined."""

    names: tuple[str, ...] = ()
    pii: Mapping[str, Decision] = field(default_factory=dict)
    pii_restore: bool = False
    pii_in_responses: bool = False
    pii_min_score: float = 0.4
    recognizers: tuple[CustomRecognizer, ...] = ()
    injection: InjectionSettings | None = None
    images: ImageSettings | None = None
    output_rules: tuple[OutputRule, ...] = ()
    window_chars: int = 64
    structured: StructuredSettings | None = None

    @property
    def masks(self) -> bool:
        return any(d.action == "mask" for d in self.pii.values())

    @property
    def filters_responses(self) -> bool:
        """Whether answers must pass through the guardrails (else they are relayed untouched)."""
        return bool(self.output_rules) or self.pii_in_responses or (self.pii_restore and self.masks)

    @property
    def active(self) -> bool:
        return bool(
            self.pii or self.injection or self.images or self.output_rules or self.structured
        )


NO_POLICY = Policy()


def _rule_regex(spec: OutputRuleSpec) -> re.Pattern[str]:
    parts = [r"(?<!\w)" + re.escape(term) + r"(?!\w)" for term in spec.terms if term]
    parts += [f"(?:{p})" for p in spec.patterns]
    return re.compile("|".join(parts) or r"(?!x)x", re.IGNORECASE)


def compile_policy(name: str, spec: PolicySpec) -> Policy:
    pii: dict[str, Decision] = {}
    if spec.pii is not None:
        entities = spec.pii.entities or dict.fromkeys(DEFAULT_PII_ENTITIES, "mask")
        pii = {entity: Decision(action, name) for entity, action in entities.items()}
        for recognizer in spec.pii.recognizers:
            pii.setdefault(recognizer.entity, Decision("mask", name))
    injection = None
    if spec.injection is not None:
        i = spec.injection
        injection = InjectionSettings(i.action, i.threshold, i.route, tuple(i.detectors), name)
    output = spec.output or OutputSpec()
    rules = tuple(
        OutputRule(
            policy=name,
            name=r.name,
            category=r.category,
            action=r.action,
            regex=_rule_regex(r),
            longest_term=max((len(t) for t in r.terms), default=0),
        )
        for r in output.rules
    )
    images = None
    if spec.images is not None:
        images = ImageSettings(spec.images.action, spec.images.fallback, name)
    structured = None
    if spec.structured_output is not None:
        s = spec.structured_output
        structured = StructuredSettings(s.json_schema, s.retries, s.fallback, name)
    return Policy(
        names=(name,),
        pii=pii,
        pii_restore=bool(spec.pii and spec.pii.restore),
        pii_in_responses=bool(spec.pii and spec.pii.in_responses),
        pii_min_score=spec.pii.min_score if spec.pii else 0.4,
        recognizers=tuple(
            CustomRecognizer(r.entity, re.compile(r.pattern), r.score)
            for r in (spec.pii.recognizers if spec.pii else ())
        ),
        injection=injection,
        images=images,
        output_rules=rules,
        window_chars=max([output.window_chars, *(r.longest_term for r in rules)]),
        structured=structured,
    )


def _stricter_injection(
    a: InjectionSettings | None, b: InjectionSettings | None
) -> InjectionSettings | None:
    if a is None or b is None:
        return a or b
    first = max((a, b), key=lambda s: _INJECTION_STRICTNESS[s.action])
    return InjectionSettings(
        action=first.action,
        threshold=min(a.threshold, b.threshold),
        route=first.route,
        detectors=tuple(dict.fromkeys(a.detectors + b.detectors)),
        policy=first.policy,
    )


def _stricter_images(a: ImageSettings | None, b: ImageSettings | None) -> ImageSettings | None:
    if a is None or b is None:
        return a or b
    first = max((a, b), key=lambda s: _IMAGE_STRICTNESS[s.action])
    fallback: ImageFallback = "refuse" if "refuse" in (a.fallback, b.fallback) else "record"
    return ImageSettings(first.action, fallback, first.policy)


def combine(policies: Iterable[Policy]) -> Policy:
    """The strictest of each: block over mask over flag; the lowest injection threshold."""
    result = NO_POLICY
    for policy in policies:
        if result is NO_POLICY:
            result = policy
            continue
        pii = dict(result.pii)
        for entity, decision in policy.pii.items():
            held = pii.get(entity)
            if held is None or _PII_STRICTNESS[decision.action] > _PII_STRICTNESS[held.action]:
                pii[entity] = decision
        restore = (result.pii_restore or not result.pii) and (policy.pii_restore or not policy.pii)
        result = Policy(
            names=result.names + policy.names,
            pii=pii,
            pii_restore=restore and bool(pii),
            pii_in_responses=result.pii_in_responses or policy.pii_in_responses,
            pii_min_score=min(result.pii_min_score, policy.pii_min_score),
            recognizers=result.recognizers + policy.recognizers,
            injection=_stricter_injection(result.injection, policy.injection),
            images=_stricter_images(result.images, policy.images),
            output_rules=result.output_rules + policy.output_rules,
            window_chars=max(result.window_chars, policy.window_chars),
            structured=result.structured or policy.structured,
        )
    return result
