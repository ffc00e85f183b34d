"""Prompts in the declarative YAML: applying the same file twice changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.activity.models import ActivityEvent
from gateway_site.declarative.services import ConfigError, config_apply, config_load
from routing.prompts.models import LabelMove, PromptLabel, PromptPin, PromptVersion

pytestmark = [pytest.mark.django_db]

CONFIG = """
tenants:
  - slug: gitops
    name: GitOps Co
    teams:
      - slug: regulated
        name: Regulated desk
        keys:
          - name: regulated-key
            value: gw-test-regulated-key-000000000
    prompts:
      - name: allocation
        description: Portfolio allocation answers
        versions:
          - template: "You are a careful advisor for {{ client }}."
            note: first version
          - messages:
              - role: system
                content: "You are a friendly advisor for {{ client }}."
              - role: user
                content: "Context: {{ context }}"
            parameters: {temperature: 0.2, max_tokens: 300}
            model: demo
            note: warmer tone
        labels:
          production: 1
          staging: {version: 2}
          canary: {version: 1, canary: {version: 2, percent: 25}}
        pins:
          - team: regulated
            version: 1
          - key: regulated-key
            version: 1
"""


def _apply(tmp_path: Path, text: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    config_apply(config_load(path))


def test_prompts_versions_labels_and_pins_come_from_the_yaml(tmp_path):
    _apply(tmp_path, CONFIG)

    v1, v2 = PromptVersion.objects.filter(prompt__name="allocation").order_by("number")
    assert v1.messages == [
        {"role": "system", "content": "You are a careful advisor for {{ client }}."}
    ]
    assert (v2.variables, v2.parameters, v2.model, v2.note) == (
        ["client", "context"],
        {"temperature": 0.2, "max_tokens": 300},
        "demo",
        "warmer tone",
    )
    assert v1.author_label == "declarative config"
    labels = {
        label.name: (
            label.version.number,
            label.canary_version and label.canary_version.number,
            label.canary_percent,
        )
        for label in PromptLabel.objects.filter(prompt__name="allocation")
    }
    assert labels == {"production": (1, None, 0), "staging": (2, None, 0), "canary": (1, 2, 25)}
    assert PromptPin.objects.filter(prompt__name="allocation", version=v1).count() == 2


def test_applying_the_same_yaml_twice_publishes_and_moves_nothing(tmp_path):
    _apply(tmp_path, CONFIG)
    versions, moves = PromptVersion.objects.count(), LabelMove.objects.count()
    events = ActivityEvent.objects.filter(action__startswith="prompt.").count()

    _apply(tmp_path, CONFIG)

    assert PromptVersion.objects.count() == versions
    assert LabelMove.objects.count() == moves
    assert ActivityEvent.objects.filter(action__startswith="prompt.").count() == events


def test_moving_a_label_in_the_yaml_is_a_recorded_move(tmp_path):
    _apply(tmp_path, CONFIG)
    _apply(tmp_path, CONFIG.replace("production: 1", "production: 2"))

    label = PromptLabel.objects.get(prompt__name="allocation", name="production")
    assert label.version.number == 2
    last = label.moves.order_by("-id").first()
    assert (last.from_version, last.to_version, last.actor_label) == (1, 2, "declarative config")


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (("production: 1", "production: 3"), "label 'production' names version 3"),
        (("production: 1", "'42': 1"), "'42' is not a valid label"),
        (("note: first version", "note: x\n            mesages: []"), "mesages"),
        (("team: regulated", "team: nobody"), "team 'nobody'"),
    ],
)
def test_a_bad_prompt_in_the_yaml_is_refused_with_where_and_why(tmp_path, change, complaint):
    with pytest.raises(ConfigError, match=complaint):
        _apply(tmp_path, CONFIG.replace(*change))
