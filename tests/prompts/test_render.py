"""Rendering is plain substitution: no code runs, nothing is expanded twice."""

from __future__ import annotations

import pytest

from routing.prompts.render import (
    MissingVariable,
    compile_messages,
    render_messages,
    system_fingerprint,
    template_variables,
)


def _render(text: str, **values: str) -> str:
    return render_messages(compile_messages([{"role": "system", "content": text}]), values)[0][
        "content"
    ]


def test_it_substitutes_variables_with_or_without_spaces():
    assert _render("Hello {{name}}, {{ tone }} please.", name="Ann", tone="briefly") == (
        "Hello Ann, briefly please."
    )


def test_a_missing_variable_names_itself():
    with pytest.raises(MissingVariable) as raised:
        _render("For {{ client }} about {{ topic }}", client="C-1")
    assert raised.value.name == "topic"


def test_nothing_in_a_template_or_a_value_is_evaluated():
    text = "{{ name.__class__ }} {% if x %}{{ 7*7 }}{% endif %} ${HOME} {0} {{ name }}"
    # Only `{{ name }}` is a variable; everything else is literal text.
    assert _render(text, name="{{ secret }}") == (
        "{{ name.__class__ }} {% if x %}{{ 7*7 }}{% endif %} ${HOME} {0} {{ secret }}"
    )


def test_variables_are_listed_in_order_of_first_use():
    messages = [
        {"role": "system", "content": "{{ b }} and {{a}}"},
        {"role": "user", "content": "{{ a }} then {{ c }}"},
    ]
    assert template_variables(messages) == ["b", "a", "c"]


def test_a_fingerprint_ignores_whitespace_but_not_wording():
    one = [
        {"role": "system", "content": "Be  concise.\n\nAnswer in English."},
        {"role": "user", "content": "hi"},
    ]
    reindented = [{"role": "system", "content": "  Be concise. Answer in English.  "}]
    reworded = [{"role": "system", "content": "Be concise. Answer in French."}]
    assert system_fingerprint(one) == system_fingerprint(reindented)
    assert system_fingerprint(one).startswith("sp_") and len(system_fingerprint(one)) == 19
    assert system_fingerprint(one) != system_fingerprint(reworded)


def test_there_is_no_fingerprint_without_a_system_prompt():
    assert system_fingerprint([{"role": "user", "content": "hi"}]) == ""
    assert system_fingerprint(None) == ""


def test_text_parts_of_a_system_message_are_fingerprinted():
    parts = [{"role": "developer", "content": [{"type": "text", "text": "Be concise."}]}]
    assert system_fingerprint(parts) == system_fingerprint(
        [{"role": "system", "content": "Be concise."}]
    )
