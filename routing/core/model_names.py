"""Route aliases and the patterns among them (`claude-*`, `gpt-5*`).

Clients such as Claude Code and Codex ask for their own default model names, which change with
every release; a route whose alias is a pattern serves them all. A name a client sends is looked
up as an exact route alias, then as a deployment name, then against the patterns, the most
specific first (docs/config.md, "Route name patterns"):

1. the most literal text (the alias without its `*`s) wins: `claude-sonnet-*` before `claude-*`;
2. then the fewer wildcards: `gpt-5*` before `gpt-*5*`;
3. then the alias in code-point order, so the choice never depends on load order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

WILDCARD = "*"
ALIAS_MAX_LENGTH = 128
# Model names in the wild: `gpt-5.1-codex`, `claude-sonnet-4-5@20250929`, `llama3:8b`,
# `meta-llama/Llama-3.1-8B-Instruct`. `*` is the only wildcard.
_ALIAS = re.compile(r"[A-Za-z0-9*][A-Za-z0-9._:/@+*-]*")
_OTHER_GLOB = re.compile(r"[?\[\]{}]")


def is_pattern(alias: str) -> bool:
    return WILDCARD in alias


def alias_problem(alias: str) -> str | None:
    """Why `alias` cannot name a route, or None when it can."""
    if not alias or len(alias) > ALIAS_MAX_LENGTH:
        return f"an alias has 1 to {ALIAS_MAX_LENGTH} characters"
    if _OTHER_GLOB.search(alias):
        return "only '*' is a wildcard in an alias ('?', '[', ']', '{', '}' are not allowed)"
    if not _ALIAS.fullmatch(alias):
        return (
            "an alias starts with a letter, a digit or '*' and has only letters, digits, "
            "'.', '_', ':', '/', '@', '+', '-' and the wildcard '*'"
        )
    if WILDCARD * 2 in alias:
        return "'**' is not allowed: one '*' already matches any run of characters"
    if not alias.replace(WILDCARD, ""):
        return "a pattern needs literal text: '*' alone would answer every model name, typos too"
    return None


def pattern_regex(alias: str) -> re.Pattern[str]:
    """`*` matches any run of characters (none included); everything else is literal."""
    return re.compile(".*".join(re.escape(part) for part in alias.split(WILDCARD)), re.DOTALL)


def specificity(alias: str) -> tuple[int, int, str]:
    """Sort key: the most specific pattern first (see the module's docstring)."""
    return (-len(alias.replace(WILDCARD, "")), alias.count(WILDCARD), alias)


@dataclass(frozen=True, slots=True)
class NamePatterns:
    """Pattern aliases, most specific first; `match` answers which one serves a name."""

    ordered: tuple[tuple[str, re.Pattern[str]], ...] = ()

    @classmethod
    def of(cls, aliases: Iterable[str]) -> NamePatterns:
        found = sorted({alias for alias in aliases if is_pattern(alias)}, key=specificity)
        return cls(tuple((alias, pattern_regex(alias)) for alias in found))

    def match(self, name: str) -> str | None:
        for alias, regex in self.ordered:
            if regex.fullmatch(name):
                return alias
        return None
