"""`manage.py seed_demo` (what `make run` seeds): one console user per role with the password it
prints, a PII-masking policy on the demo tenant, the ports of the run, and a .env.demo that a shell
can `source` for curl and python alike."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from gateway_site.declarative.management.commands.seed_demo import read_env_file
from routing.guardrails.models import PolicyAttachment
from routing.models import Provider
from tenants.keys import hash_key
from tenants.models import ApiKey, Membership, Role, Tenant

pytestmark = [pytest.mark.django_db]

ROLES = {
    "dev": Role.DEVELOPER,
    "compliance": Role.COMPLIANCE,
    "finance": Role.FINANCE,
    "admin": Role.TENANT_ADMIN,
    "platform": Role.PLATFORM_ADMIN,
}


@pytest.fixture(autouse=True)
def _fast_hashes(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _seed(env_file: Path, *, port: int = 8123, mock_port: int = 9234) -> str:
    out = io.StringIO()
    call_command(
        "seed_demo",
        env_file=env_file,
        url=f"http://127.0.0.1:{port}",
        mock_url=f"http://127.0.0.1:{mock_port}/v1",
        stdout=out,
    )
    return out.getvalue()


def test_one_user_per_role_signs_in_with_the_printed_password(tmp_path: Path) -> None:
    printed = _seed(tmp_path / ".env.demo")

    demo = Tenant.objects.get(slug="demo")
    for username, role in ROLES.items():
        match = re.search(rf"^\s+[a-z ]+:\s+{username} / (\S+)$", printed, re.MULTILINE)
        assert match, f"{username} is not printed"
        user = get_user_model().objects.get(username=username)
        assert user.check_password(match.group(1)), username
        assert Membership.objects.get(user=user, tenant=demo).role == role


def test_the_demo_tenant_masks_pii(tmp_path: Path) -> None:
    _seed(tmp_path / ".env.demo")

    attached = PolicyAttachment.objects.select_related("policy").get(
        tenant__slug="demo", policy__name="demo-pii"
    )
    assert attached.policy.is_active
    assert "pii" in attached.policy.spec  # empty entities: the six defaults (SSN, e-mail…) masked


def test_the_ports_of_the_run_are_honoured(tmp_path: Path) -> None:
    env_file = tmp_path / ".env.demo"

    _seed(env_file, port=8123, mock_port=9234)

    assert Provider.objects.get(name="mock-openai").base_url == "http://127.0.0.1:9234/v1"
    values = read_env_file(env_file)
    assert values["GATEWAY_URL"] == "http://127.0.0.1:8123/v1"
    assert values["GATEWAY_CONSOLE_URL"] == "http://127.0.0.1:8123/console/"


def test_the_default_mock_port_comes_from_mock_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOCK_PORT", "9345")

    call_command("seed_demo", env_file=tmp_path / ".env.demo", stdout=io.StringIO())

    assert Provider.objects.get(name="mock-openai").base_url == "http://127.0.0.1:9345/v1"


def test_a_shell_that_sources_the_env_file_passes_it_to_python(tmp_path: Path) -> None:
    env_file = tmp_path / ".env.demo"
    _seed(env_file)
    script = (
        f"source {env_file} && {sys.executable} -c "
        '\'import os; print(os.environ["GATEWAY_URL"], len(os.environ["GATEWAY_API_KEY"]))\''
    )

    shown = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()

    assert shown[0] == "http://127.0.0.1:8123/v1" and int(shown[1]) > 20


def test_seeding_again_keeps_the_keys_and_passwords(tmp_path: Path) -> None:
    env_file = tmp_path / ".env.demo"
    _seed(env_file)
    first = read_env_file(env_file)

    _seed(env_file, port=8124)

    again = read_env_file(env_file)
    assert {k: v for k, v in again.items() if "URL" not in k} == {
        k: v for k, v in first.items() if "URL" not in k
    }
    assert again["GATEWAY_URL"] == "http://127.0.0.1:8124/v1"
    for name in ("GATEWAY_API_KEY", "GATEWAY_DEMO_RESEARCH_KEY", "GATEWAY_DEMO_OPS_KEY"):
        assert ApiKey.objects.filter(key_hash=hash_key(again[name]), tenant__slug="demo").exists()


def test_an_env_file_of_the_older_form_is_still_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env.demo"
    env_file.write_text("GATEWAY_URL=http://x/v1\nGATEWAY_API_KEY=gw-old-key-value\n")

    assert read_env_file(env_file) == {
        "GATEWAY_URL": "http://x/v1",
        "GATEWAY_API_KEY": "gw-old-key-value",
    }


def test_the_demo_has_three_teams_with_a_key_each(tmp_path: Path) -> None:
    _seed(tmp_path / ".env.demo")

    keys: Any = ApiKey.objects.filter(tenant__slug="demo").values_list("team__slug", flat=True)
    assert sorted(keys) == ["advisors", "operations", "research"]
