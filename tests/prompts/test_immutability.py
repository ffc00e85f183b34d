"""A published version never changes: not through the ORM, raw SQL, or the YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction

from gateway_site.declarative.services import config_apply, config_load
from routing.prompts.models import ImmutableVersionError, LabelMove, PromptVersion
from routing.prompts.services import prompt_label_move
from tests.prompts.conftest import OPERATOR, publish

pytestmark = [pytest.mark.django_db]


def _v1(prompt) -> PromptVersion:
    publish(prompt, "Be formal with {{ client }}.")
    return PromptVersion.objects.get(prompt=prompt, number=1)


def test_the_orm_refuses_to_save_a_changed_version(prompt):
    version = _v1(prompt)
    version.messages = [{"role": "system", "content": "Be sloppy."}]
    with pytest.raises(ImmutableVersionError):
        version.save()
    assert PromptVersion.objects.get(pk=version.pk).messages[0]["content"].startswith("Be formal")


def test_the_orm_refuses_bulk_updates_and_deletes(prompt):
    version = _v1(prompt)
    with pytest.raises(ImmutableVersionError):
        PromptVersion.objects.filter(pk=version.pk).update(note="rewritten")
    with pytest.raises(ImmutableVersionError):
        PromptVersion.objects.filter(pk=version.pk).delete()
    with pytest.raises(ImmutableVersionError):
        version.delete()
    assert PromptVersion.objects.get(pk=version.pk).note == ""


def test_the_database_refuses_raw_sql_changes_to_versions_and_label_history(prompt):
    version = _v1(prompt)
    prompt_label_move(actor=OPERATOR, prompt=prompt, label="production", version=1)
    move = LabelMove.objects.get(label__prompt=prompt)
    for sql, pk in (
        ("UPDATE prompts_promptversion SET note = 'x' WHERE id = %s", version.pk),
        ("DELETE FROM prompts_promptversion WHERE id = %s", version.pk),
        ("UPDATE prompts_labelmove SET to_version = 9 WHERE id = %s", move.pk),
        ("DELETE FROM prompts_labelmove WHERE id = %s", move.pk),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            connection.cursor().execute(sql, [pk])
    assert PromptVersion.objects.get(pk=version.pk).note == ""
    assert LabelMove.objects.get(pk=move.pk).to_version == 1


YAML = """
tenants:
  - slug: yaml-co
    name: Yaml Co
    prompts:
      - name: advisor
        versions:
          - template: "{text}"
            note: from git
        labels:
          production: 1
"""


def test_editing_a_version_in_the_yaml_publishes_a_new_one_and_keeps_the_old(tmp_path: Path):
    path = tmp_path / "gateway.yaml"
    path.write_text(YAML.format(text="Be formal."))
    config_apply(config_load(path))
    path.write_text(YAML.format(text="Be sloppy."))
    config_apply(config_load(path))

    versions = PromptVersion.objects.filter(prompt__name="advisor", prompt__tenant__slug="yaml-co")
    assert [(v.number, v.messages[0]["content"]) for v in versions.order_by("number")] == [
        (1, "Be formal."),
        (2, "Be sloppy."),
    ]
