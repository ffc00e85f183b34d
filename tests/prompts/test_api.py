"""The prompt registry through the management API, as an admin key (terraform, CI) uses it."""

from __future__ import annotations

import pytest

from audit.activity.models import ActivityEvent
from routing.prompts.models import PromptVersion
from tests.management.conftest import Api, Side, build_side

pytestmark = pytest.mark.django_db

SYSTEM = {"role": "system", "content": "You advise {{ client }} formally."}


@pytest.fixture
def ours(db: None) -> Side:
    return build_side("prompt-api", "Prompt API")


@pytest.fixture
def api(ours: Side) -> Api:
    return Api(ours.admin_key)


@pytest.fixture
def base(api: Api, ours: Side) -> str:
    path = f"/tenants/{ours.tenant.slug}/prompts"
    assert api.post(path, {"name": "advisor", "description": "tone"}).status_code == 201
    return f"{path}/advisor"


def test_publish_is_idempotent_and_labels_move_and_roll_back(api: Api, base: str, ours: Side):
    first = api.post(f"{base}/versions", {"messages": [SYSTEM], "note": "launch"})
    again = api.post(f"{base}/versions", {"messages": [SYSTEM], "note": "same content"})
    second = api.post(
        f"{base}/versions",
        {"messages": [{**SYSTEM, "content": "Be warm with {{ client }}."}], "model": "chat"},
    )
    assert (first.status_code, again.status_code, second.status_code) == (201, 200, 201)
    assert (
        first.json()["variables"] == ["client"] and "Prompt API terraform" in first.json()["author"]
    )
    assert again.json()["number"] == 1 and second.json()["number"] == 2

    assert api.put(f"{base}/labels/production", {"version": 1}).status_code == 200
    moved = api.put(
        f"{base}/labels/production", {"version": 2, "canary_version": 1, "canary_percent": 10}
    )
    assert moved.json() == {
        "label": "production",
        "version": 2,
        "canary_version": 1,
        "canary_percent": 10,
    }
    rolled = api.post(f"{base}/labels/production/rollback")
    assert rolled.json()["version"] == 1 and rolled.json()["canary_version"] is None
    history = api.get(f"{base}/history").json()["items"]
    assert [(m["from_version"], m["to_version"], m["is_rollback"]) for m in history] == [
        (2, 1, True),
        (1, 2, False),
        (None, 1, False),
    ]
    assert ActivityEvent.objects.filter(
        tenant=ours.tenant, actor_kind="admin_key", action="prompt.label_rollback"
    ).exists()


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_published_version_cannot_be_changed_through_the_api(api: Api, base: str, method: str):
    api.post(f"{base}/versions", {"messages": [SYSTEM]})
    response = getattr(api, method)(
        f"{base}/versions/1", {"messages": [{**SYSTEM, "content": "x"}]}
    )
    deleted = api.delete(f"{base}/versions/1")

    assert response.status_code == 405 and deleted.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert PromptVersion.objects.get(prompt__name="advisor", number=1).messages == [SYSTEM]


def test_a_bad_version_or_label_is_a_422_that_says_why(api: Api, base: str):
    bad = api.post(f"{base}/versions", {"messages": [{"role": "tool", "content": "x"}]})
    assert bad.status_code == 422 and "role 'tool'" in bad.json()["error"]["message"]
    api.post(f"{base}/versions", {"messages": [SYSTEM]})
    label = api.put(f"{base}/labels/42", {"version": 1})
    assert label.status_code == 422 and "not a valid label" in label.json()["error"]["message"]
    missing = api.put(f"{base}/labels/production", {"version": 7})
    assert missing.status_code == 422 and "no version 7" in missing.json()["error"]["message"]


def test_another_tenants_prompts_do_not_exist_for_a_tenant_key(api: Api, base: str):
    theirs = build_side("prompt-api-other", "Other")
    other = Api(theirs.admin_key)
    assert other.get(f"/tenants/{theirs.tenant.slug}/prompts").json()["count"] == 0
    assert other.get(base).status_code == 404
    assert other.post(f"{base}/versions", {"messages": [SYSTEM]}).status_code == 404


def test_a_prompt_with_a_label_is_listed_and_read_with_where_its_labels_point(
    api: Api, base: str, ours: Side
):
    api.post(f"{base}/versions", {"messages": [SYSTEM]})
    api.put(f"{base}/labels/production", {"version": 1})

    listed = api.get(f"/tenants/{ours.tenant.slug}/prompts")
    one = api.get(base)

    assert (listed.status_code, one.status_code) == (200, 200)
    expected = {"production": {"version": 1, "canary_version": None, "canary_percent": 0}}
    assert one.json()["labels"] == expected
    assert listed.json()["items"][0]["labels"] == expected


@pytest.mark.parametrize("value", ["1180591620717411303424", "NaN", "Infinity"])
def test_a_parameter_that_is_not_plain_json_is_refused_in_the_apis_format(
    api: Api, base: str, value: str
):
    # The version is sent on to providers as JSON: no integer past 64 bits, no NaN or Infinity.
    body = '{"messages": [{"role": "system", "content": "hi"}], "parameters": {"seed": %s}}'
    response = api.client.post(
        f"/api/v1{base}/versions",
        data=body.replace("%s", value),
        content_type="application/json",
        headers=api.headers,
    )

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "validation_error"
    assert not PromptVersion.objects.filter(prompt__name="advisor").exists()
