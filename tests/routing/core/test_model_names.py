"""Route name patterns: which aliases are valid, and which pattern serves a name."""

from __future__ import annotations

import pytest

from routing.core.model_names import NamePatterns, alias_problem


@pytest.mark.parametrize(
    "alias",
    [
        "chat",
        "claude-*",
        "gpt-5*",
        "*-mini",
        "claude-*-4-5",
        "gpt-5.1-codex",
        "llama3:8b",
        "meta-llama/Llama-3.1-8B-Instruct",
        "claude-sonnet-4-5@20250929",
    ],
)
def test_names_and_star_patterns_are_valid_aliases(alias):
    assert alias_problem(alias) is None


@pytest.mark.parametrize(
    ("alias", "why"),
    [
        ("*", "literal text"),
        ("**", "'**'"),
        ("claude-**", "'**'"),
        ("gpt-?", "only '*' is a wildcard"),
        ("gpt-[45]", "only '*' is a wildcard"),
        ("gpt-{4,5}", "only '*' is a wildcard"),
        ("chat model", "only letters, digits"),
        ("-chat", "starts with"),
        ("", "1 to 128"),
        ("x" * 129, "1 to 128"),
    ],
)
def test_other_wildcards_catch_alls_and_odd_characters_are_refused(alias, why):
    problem = alias_problem(alias)
    assert problem is not None and why in problem


def test_the_pattern_with_the_most_literal_text_wins_whatever_the_order():
    patterns = NamePatterns.of(["claude-*", "claude-opus-*", "*-4-5", "gpt-5*", "chat"])
    assert patterns.match("claude-opus-4-1") == "claude-opus-*"
    assert patterns.match("claude-sonnet-4-5") == "claude-*"  # 7 literal characters before 4
    assert patterns.match("gemini-4-5") == "*-4-5"
    assert patterns.match("gpt-5.1-codex") == "gpt-5*"
    assert patterns.match("gpt-4o") is None
    assert patterns.match("chat") is None  # a plain alias is not a pattern
    reversed_order = NamePatterns.of(["gpt-5*", "*-4-5", "claude-opus-*", "claude-*"])
    assert reversed_order.ordered == patterns.ordered


def test_ties_go_to_fewer_wildcards_then_the_alias_in_order():
    patterns = NamePatterns.of(["gpt-*5*", "gpt-5*", "b-*x", "a-*x"])
    assert patterns.match("gpt-5") == "gpt-5*"  # same literal text, one wildcard fewer
    assert patterns.match("a-b-x") == "a-*x"
    assert NamePatterns.of(["b-*", "a-*"]).match("a-b-") == "a-*"


def test_a_star_matches_any_run_of_characters_and_the_rest_is_literal():
    patterns = NamePatterns.of(["gpt-5.*"])
    assert patterns.match("gpt-5.") == "gpt-5.*"  # an empty run
    assert patterns.match("gpt-5.1-codex-max") == "gpt-5.*"
    assert patterns.match("gpt-5x1") is None  # '.' is a dot, not any character
    assert patterns.match("my-gpt-5.1") is None  # the whole name must match
