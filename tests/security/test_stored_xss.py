"""Stored (and reflected) cross-site scripting in the console.

Every free-text field a user, an admin key or an API caller controls carries attack payloads:
tenant, team and key names, usernames and emails, end-user ids, feature tags, prompt and answer
text, guardrail findings and error messages of audit records, prompt descriptions, content and
notes, activity details, provider, deployment and model names, alert messages, limits' end users.
Then every console page (from the resolver) is rendered for every role, as a page and as an HTMX
fragment, with the payloads in the query string too, and the HTML must hold none of them raw.
A static check keeps the templates and the code from switching escaping off.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.activity.services import SYSTEM
from billing.rollups import rollup_window
from routing import services as routing
from routing.evaluations.models import TaskCategory
from tenants import services as tenants
from tenants.models import Membership, Role
from tests.security.test_tenant_walk import body_text, console_pages, console_url
from tests.support.world import FullTenant, Member, add_members, build_full_tenant

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(1)"
PAYLOAD = f"{SCRIPT}{IMG}'><svg onload=alert(1)>{JS_URL}"
# What must never be in the HTML as markup: each is what the browser would run.
RAW = ("<script>alert(1)", "<img src=x onerror", "<svg onload")
JS_IN_ATTRIBUTE = re.compile(
    r"""(?:href|src|action|formaction|hx-\w+)\s*=\s*["']?\s*javascript:""", re.I
)
ROOT = Path(django_settings.BASE_DIR)


@pytest.fixture
def hostile(db: None, settings: Any) -> FullTenant:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    provider = routing.provider_upsert(
        name=f"p{IMG}",
        kind="openai",
        base_url="http://127.0.0.1:9/v1",
        credential="x",
        region="us",
    )
    deployment = routing.deployment_upsert(
        name=f"dep{PAYLOAD}",
        provider=provider,
        upstream_model=f"model{PAYLOAD}",
        input_price_per_mtok=Decimal(1),
        output_price_per_mtok=Decimal(1),
    )
    routing.route_upsert(alias="xss-route", description=PAYLOAD, deployments=[deployment])
    TaskCategory.objects.create(name="xss-category", description=PAYLOAD, threshold=0.5)
    world = build_full_tenant(slug="xss", words=PAYLOAD)
    # A username and an email the services now refuse, as an account made before that rule (or
    # by single sign-on from another directory's names) can still carry them.
    odd = get_user_model().objects.create(username=f"u{IMG}"[:150], email=f"{IMG}@x.example")
    Membership.objects.create(user=odd, tenant=world.tenant, role=Role.DEVELOPER)
    world.team.members.add(odd)
    tenants.team_pins_set(team=world.team, model_pins={"xss-route": f"dep{PAYLOAD}"}, actor=SYSTEM)
    now = timezone.now()
    rollup_window(
        granularity="hour",
        start=now.replace(minute=0, second=0, microsecond=0) - timezone.timedelta(hours=1),
        end=now + timezone.timedelta(hours=1),
    )
    return world


def _viewers(world: FullTenant) -> dict[str, Any]:
    assert world.world is not None
    (platform,) = add_members(
        world.world, [Member(Role.PLATFORM_ADMIN, "xss-platform", "p@x.example")]
    ).values()
    return {**world.users, "platform_admin": platform}


def unsafe(html: str) -> list[str]:
    found = [raw for raw in RAW if raw in html]
    found += JS_IN_ATTRIBUTE.findall(html)
    return found


def test_no_console_page_renders_a_stored_payload_as_markup(hostile: FullTenant) -> None:
    values = hostile.path_values()
    query = {
        "q": PAYLOAD,
        "user": PAYLOAD,
        "end_user": PAYLOAD,
        "feature": PAYLOAD,
        "old": 1,
        "new": 2,
    }
    problems, pages_with_payload = [], set()
    for role, user in _viewers(hostile).items():
        client = Client()
        client.force_login(user)
        for page in console_pages():
            if page.name in {"console:logout", "console:oidc_start", "console:oidc_callback"}:
                continue
            if "tenant_slug" in page.params:
                url = console_url(page, values, hostile.tenant.slug)
            else:
                url = reverse(page.name)
            for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
                response = client.get(url, query, **headers)
                if "html" not in response.get("Content-Type", ""):
                    continue
                html = body_text(response)
                if "alert(1)" in html:
                    pages_with_payload.add(page.name)
                bad = unsafe(html)
                if bad:
                    problems.append(f"{role} {url} {headers}: {bad}")
                if response.status_code >= 500:
                    problems.append(f"{role} {url}: {response.status_code}")
    # The payloads did reach the pages that show these fields (escaped).
    assert len(pages_with_payload) >= 20, sorted(pages_with_payload)
    assert not problems, "\n".join(problems)


def test_the_page_that_shows_a_new_key_escapes_its_name(hostile: FullTenant) -> None:
    client = Client()
    client.force_login(hostile.users[Role.DEVELOPER])
    url = reverse("console:key_create", kwargs={"tenant_slug": hostile.tenant.slug})
    response = client.post(url, {"name": f"new{PAYLOAD}", "team": hostile.team.pk})
    assert response.status_code == 201
    html = response.content.decode()
    assert "alert(1)" in html and not unsafe(html)


def test_a_rejected_form_echoes_what_was_typed_escaped(hostile: FullTenant) -> None:
    client = Client()
    client.force_login(hostile.users[Role.TENANT_ADMIN])
    slug = hostile.tenant.slug
    posts = [
        (
            reverse("console:admin_teams", kwargs={"tenant_slug": slug}),
            {"slug": "bad slug!", "name": PAYLOAD},
        ),
        (
            reverse("console:admin_members", kwargs={"tenant_slug": slug}),
            {"username": PAYLOAD, "email": PAYLOAD},
        ),
        (
            reverse("quotas:budget_save", kwargs={"tenant_slug": slug}),
            {
                "scope": "end_user",
                "end_user": PAYLOAD,
                "timezone": PAYLOAD,
                "amount_usd": "1",
                "period": "month",
            },
        ),
        (
            reverse("prompts:create", kwargs={"tenant_slug": slug}),
            {"name": PAYLOAD, "system": PAYLOAD, "parameters": PAYLOAD},
        ),
    ]
    for url, data in posts:
        html = client.post(url, data).content.decode()
        assert not unsafe(html), url


# --- the static check -----------------------------------------------------------------------------

TEMPLATE_RISKS = {
    "|safe": re.compile(r"\|\s*safe\b"),
    "autoescape off": re.compile(r"{%\s*autoescape\s+off"),
    "a variable inside <script>": re.compile(r"<script[^>]*>(?:(?!</script>).)*{{", re.S),
    "user data in hx-vals/hx-headers": re.compile(
        r"hx-(?:vals|headers)\s*=\s*['\"](?:(?!['\"]\s).)*{{(?!\s*csrf_token\s*}})", re.S
    ),
    "a variable in an event handler": re.compile(r"\son[a-z]+\s*=\s*['\"][^'\"]*{{", re.I),
}
CODE_RISKS = {
    "mark_safe": re.compile(r"\bmark_safe\("),
    "SafeString": re.compile(r"\bSafeString\("),
    "format_html with an f-string": re.compile(r"format_html\(\s*f['\"]"),
}
# Reviewed uses: file -> why it is safe. Empty today; add an entry only with a reason.
REVIEWED: dict[str, str] = {}


def _project_files(suffix: str) -> list[Path]:
    skip = {".venv", "node_modules", "tests", "staticfiles", ".git"}
    return [p for p in ROOT.rglob(f"*{suffix}") if not skip & set(p.relative_to(ROOT).parts)]


def test_no_template_or_view_switches_escaping_off() -> None:
    templates, code = _project_files(".html"), _project_files(".py")
    assert len(templates) > 30
    found = []
    for path, risks in [(p, TEMPLATE_RISKS) for p in templates] + [(p, CODE_RISKS) for p in code]:
        text = path.read_text(errors="replace")
        for what, pattern in risks.items():
            if pattern.search(text) and str(path.relative_to(ROOT)) not in REVIEWED:
                found.append(f"{path.relative_to(ROOT)}: {what}")
    assert found == []


def test_the_htmx_csrf_header_is_the_only_template_value_in_hx_headers() -> None:
    base = (ROOT / "templates/console/base.html").read_text()
    assert 'hx-headers=\'{"X-CSRFToken": "{{ csrf_token }}"}\'' in base
    # The token is Django's own ([A-Za-z0-9] only): it cannot break out of the JSON.
