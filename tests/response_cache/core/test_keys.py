"""What makes two requests the same question, and who may share its answer."""

from __future__ import annotations

from typing import Any

from routing.cache.core.keys import key_pattern, one_word_swapped, request_keys
from routing.cache.core.policy import Directives, parse_cache_control


def keys(text: str = "How is the Smith portfolio allocated?", **overrides: Any) -> Any:
    payload = overrides.pop("payload", {"messages": [{"role": "user", "content": text}]})
    arguments = {
        "tenant_id": 1,
        "scope": "",
        "route": "advisor-chat",
        "prompt_name": "",
        "prompt_version": None,
        "deployments": ("gpt-a",),
        "payload": payload,
    } | overrides
    return request_keys(**arguments)


def test_two_tenants_never_share_a_key_or_a_partition():
    ours, theirs = keys(tenant_id=1), keys(tenant_id=2)
    assert ours.exact != theirs.exact and ours.partition != theirs.partition


def test_a_team_or_user_scope_narrows_both_keys():
    assert keys(scope="team:3").exact != keys().exact
    assert keys(scope="user:ann").partition != keys(scope="user:bob").partition


def test_a_prompt_version_is_part_of_both_keys():
    v1 = keys(prompt_name="advisor", prompt_version=1)
    v2 = keys(prompt_name="advisor", prompt_version=2)
    assert v1.exact != v2.exact and v1.partition != v2.partition


def test_an_answer_from_another_set_of_deployments_is_another_key():
    assert keys(deployments=("gpt-a",)).exact != keys(deployments=("gpt-eu",)).exact


def test_how_an_answer_is_delivered_does_not_change_the_key():
    base = {"model": "advisor-chat", "messages": [{"role": "user", "content": " Hi there "}]}
    streamed = {
        **base,
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "ann",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}],
    }
    assert keys(payload=base).exact == keys(payload=streamed).exact


def test_parameters_that_change_the_answer_change_the_key():
    base = {"messages": [{"role": "user", "content": "Hi"}]}
    for change in ({"temperature": 0.2}, {"tools": [{"type": "function"}]}, {"max_tokens": 5}):
        assert keys(payload=base).exact != keys(payload={**base, **change}).exact


def test_semantic_candidates_share_tools_temperature_class_and_conversation():
    def partition(**extra: Any) -> str:
        messages = extra.pop("messages", [])
        payload = {"messages": [*messages, {"role": "user", "content": "Smith allocation?"}]}
        return keys(payload=payload | extra).partition

    assert partition(temperature=0.0) == partition(temperature=0.2)
    assert partition(temperature=0.0) != partition(temperature=0.9)
    assert partition() != partition(tools=[{"type": "function"}])
    assert partition() != partition(messages=[{"role": "system", "content": "Be brief."}])


def test_names_numbers_negation_and_opposites_split_partitions():
    same = keys("What is the Smith portfolio allocation?").partition
    assert keys("What's the Smith portfolio's allocation?").partition == same
    for other in (
        "What is the Jones portfolio allocation?",
        "What is the Smith portfolio allocation in 2024?",
        "What is not the Smith portfolio allocation?",
    ):
        assert keys(other).partition != same
    assert keys("Should I buy bonds?").partition != keys("Should I sell bonds?").partition
    assert keys("Returns this year?").partition != keys("Returns last year?").partition
    # Order counts: a conversion one way is not the conversion the other way.
    one_way = keys("Convert a traditional IRA to a Roth?").partition
    assert keys("Convert a Roth IRA to a traditional IRA?").partition != one_way


def test_one_swapped_word_is_another_question():
    gross = keys("What is the gross return of the fund?").terms
    net = keys("What is the net return of the fund?").terms
    reworded = keys("Could you tell me the fund's gross return?").terms
    assert one_word_swapped(gross, net)
    assert not one_word_swapped(gross, reworded)


def test_a_purge_pattern_matches_only_what_it_names():
    exact = keys(tenant_id=7, prompt_name="advisor", prompt_version=3).exact
    import fnmatch

    def matches(**filters: Any) -> bool:
        return fnmatch.fnmatchcase(exact, key_pattern(**filters))

    assert matches(tenant_id=7, route=None, prompt=None)
    assert matches(tenant_id=7, route="advisor-chat", prompt="advisor@3")
    assert matches(tenant_id=7, route=None, prompt="advisor")
    assert not matches(tenant_id=70, route=None, prompt=None)
    assert not matches(tenant_id=7, route=None, prompt="advisor@30")
    assert not matches(tenant_id=None, route="other-chat", prompt=None)


def test_cache_control_directives():
    assert parse_cache_control("") == Directives()
    assert parse_cache_control("no-store") == Directives(no_store=True)
    assert parse_cache_control("No-Cache, max-age=60") == Directives(no_cache=True, max_age_s=60)
    assert parse_cache_control("max-age=0").no_cache
    assert parse_cache_control('max-age="30", private') == Directives(max_age_s=30)
