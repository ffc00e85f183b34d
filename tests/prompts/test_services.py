"""Publishing, labels, rollback and pins, as an operator would use them."""

from __future__ import annotations

import pytest

from audit.activity.models import ActivityEvent
from routing.prompts import services
from routing.prompts.models import LabelMove, PromptLabel, PromptVersion
from tests.prompts.conftest import OPERATOR, publish

pytestmark = [pytest.mark.django_db]


def test_publishing_numbers_versions_and_records_author_and_note(prompt):
    first = publish(prompt, "Be formal with {{ client }}.", note="first cut")
    second = publish(prompt, "Be warm with {{ client }}.", parameters={"temperature": 0.3})

    assert (first, second) == (1, 2)
    v1, v2 = PromptVersion.objects.filter(prompt=prompt).order_by("number")
    assert (v1.author_label, v1.note, v1.variables) == ("ops-lead", "first cut", ["client"])
    assert v2.parameters == {"temperature": 0.3}
    assert ActivityEvent.objects.filter(action="prompt.publish", tenant=prompt.tenant).count() == 2


def test_publishing_identical_content_again_creates_no_version(prompt):
    publish(prompt, "Be formal.")
    publish(prompt, "Be warm.")
    again, created = services.prompt_publish(
        actor=OPERATOR,
        prompt=prompt,
        messages=[{"role": "system", "content": "Be formal."}],
        note="a different note does not make different content",
    )
    assert (again.number, created) == (1, False)
    assert PromptVersion.objects.filter(prompt=prompt).count() == 2


@pytest.mark.parametrize(
    ("messages", "parameters", "complaint"),
    [
        ([], {}, "at least one message"),
        ([{"role": "tool", "content": "x"}], {}, "role 'tool'"),
        ([{"role": "system", "content": "  "}], {}, "non-empty"),
        ([{"role": "system", "content": "x"}], {"model": "other"}, "Unknown model parameter"),
        ([{"role": "system", "content": "x"}], {"messages": []}, "Unknown model parameter"),
    ],
)
def test_a_bad_version_is_refused_with_a_reason(prompt, messages, parameters, complaint):
    with pytest.raises(services.PromptError, match=complaint):
        services.prompt_publish(
            actor=OPERATOR, prompt=prompt, messages=messages, parameters=parameters
        )


def test_every_label_move_is_kept_and_rollback_is_one_recorded_action(prompt):
    publish(prompt, "v1")
    publish(prompt, "v2")
    services.prompt_label_move(actor=OPERATOR, prompt=prompt, label="production", version=1)
    label = services.prompt_label_move(
        actor=OPERATOR, prompt=prompt, label="production", version=2, note="new tone"
    )

    rolled = services.prompt_label_rollback(actor=OPERATOR, label=label)

    assert rolled.version.number == 1
    moves = list(LabelMove.objects.filter(label=label).order_by("id"))
    assert [(m.from_version, m.to_version, m.is_rollback) for m in moves] == [
        (None, 1, False),
        (1, 2, False),
        (2, 1, True),
    ]
    assert moves[-1].actor_label == "ops-lead"
    actions = list(
        ActivityEvent.objects.filter(
            action__startswith="prompt.label", tenant=prompt.tenant
        ).values_list("action", flat=True)
    )
    assert actions.count("prompt.label_move") == 2 and actions.count("prompt.label_rollback") == 1


def test_moving_a_label_where_it_already_points_records_nothing(prompt):
    publish(prompt, "v1")
    services.prompt_label_move(actor=OPERATOR, prompt=prompt, label="staging", version=1)
    services.prompt_label_move(actor=OPERATOR, prompt=prompt, label="staging", version=1)
    assert LabelMove.objects.filter(label__prompt=prompt).count() == 1


def test_a_label_that_never_moved_cannot_be_rolled_back(prompt):
    publish(prompt, "v1")
    label = services.prompt_label_move(actor=OPERATOR, prompt=prompt, label="production", version=1)
    with pytest.raises(services.PromptError, match="nothing to roll back"):
        services.prompt_label_rollback(actor=OPERATOR, label=label)


def test_a_canary_splits_a_label_between_two_existing_versions(prompt):
    publish(prompt, "v1")
    publish(prompt, "v2")
    label = services.prompt_label_move(
        actor=OPERATOR,
        prompt=prompt,
        label="production",
        version=1,
        canary_version=2,
        canary_percent=10,
    )
    assert (label.canary_version.number, label.canary_percent) == (2, 10)
    with pytest.raises(services.PromptError, match="no version 3"):
        services.prompt_label_move(
            actor=OPERATOR,
            prompt=prompt,
            label="production",
            version=1,
            canary_version=3,
            canary_percent=5,
        )
    with pytest.raises(services.PromptError, match="different version"):
        services.prompt_label_move(
            actor=OPERATOR,
            prompt=prompt,
            label="production",
            version=1,
            canary_version=1,
            canary_percent=5,
        )


@pytest.mark.parametrize("label", ["12", "Prod", "a b", ""])
def test_labels_that_would_read_as_versions_or_are_malformed_are_refused(prompt, label):
    publish(prompt, "v1")
    with pytest.raises(services.PromptError, match="not a valid label"):
        services.prompt_label_move(actor=OPERATOR, prompt=prompt, label=label, version=1)
    assert not PromptLabel.objects.filter(prompt=prompt).exists()


def test_a_pin_holds_a_team_to_a_version_and_refuses_other_tenants(prompt):
    from tenants import services as tenants

    publish(prompt, "v1")
    team = tenants.team_apply(tenant=prompt.tenant, slug="desk", name="Desk", allowed_models=[])
    pin = services.prompt_pin_set(actor=OPERATOR, prompt=prompt, version=1, team=team)
    assert pin.version.number == 1

    other = tenants.tenant_apply(slug="elsewhere", name="Elsewhere")
    outsider = tenants.team_apply(tenant=other, slug="desk", name="Desk", allowed_models=[])
    with pytest.raises(services.PromptError, match="another tenant"):
        services.prompt_pin_set(actor=OPERATOR, prompt=prompt, version=1, team=outsider)
