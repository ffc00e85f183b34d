"""Seed the demo of `make run`; write its URLs, keys and console passwords to .env.demo.

The values in .env.demo are reused on later runs, so the keys and passwords stay the same; the
URLs follow the ports of each run (GATEWAY_PORT through `--url`, MOCK_PORT through `--mock-url`).
The file is a shell script of `export NAME='value'` lines: after `source .env.demo` the variables
reach the programs started from that shell (curl, python).
"""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from gateway_site.declarative.schema import GatewayConfig
from gateway_site.declarative.services import config_apply, config_load
from tenants.keys import generate_key

DEMO_CONFIG = Path(settings.BASE_DIR) / "config" / "demo.yaml"
# demo.yaml names the mock provider at its default address; the seed moves it to --mock-url.
DEMO_MOCK_URL = "http://127.0.0.1:9100/v1"
KEYS = ("GATEWAY_API_KEY", "GATEWAY_DEMO_RESEARCH_KEY", "GATEWAY_DEMO_OPS_KEY")
# username -> (role as shown, the variable holding its password); demo.yaml declares the users.
USERS = {
    "dev": ("developer", "GATEWAY_DEMO_DEVELOPER_PASSWORD"),
    "compliance": ("compliance", "GATEWAY_DEMO_COMPLIANCE_PASSWORD"),
    "finance": ("finance", "GATEWAY_DEMO_FINANCE_PASSWORD"),
    "admin": ("tenant admin", "GATEWAY_DEMO_ADMIN_PASSWORD"),
    "platform": ("platform admin", "GATEWAY_DEMO_PLATFORM_PASSWORD"),
}


def read_env_file(path: Path) -> dict[str, str]:
    """NAME=value or `export NAME='value'` lines (the older files had no `export`)."""
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export ") :]
        name, sep, raw = line.partition("=")
        if not sep or not name.strip() or name.startswith("#"):
            continue
        words = shlex.split(raw) if raw.strip() else [""]
        values[name.strip()] = words[0] if words else ""
    return values


def write_env_file(path: Path, values: dict[str, str]) -> None:
    lines = [
        "# Written by `manage.py seed_demo`: `source .env.demo`, then run curl or python.\n",
        *(f"export {name}={shlex.quote(value)}\n" for name, value in values.items()),
    ]
    path.write_text("".join(lines))
    path.chmod(0o600)


def with_mock_at(config: GatewayConfig, mock_url: str) -> GatewayConfig:
    """The demo configuration with its mock provider at `mock_url` (e.g. another MOCK_PORT)."""
    providers = [
        p.model_copy(update={"base_url": mock_url}) if p.base_url == DEMO_MOCK_URL else p
        for p in config.providers
    ]
    return config.model_copy(update={"providers": providers})


def _default_mock_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('MOCK_PORT') or 9100}/v1"


class Command(BaseCommand):
    help = "Seed the demo tenant, teams, keys, users, PII policy and mock routes; write .env.demo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--env-file", type=Path, default=Path(settings.BASE_DIR) / ".env.demo")
        parser.add_argument("--url", default=settings.GATEWAY.public_url)
        parser.add_argument(
            "--mock-url",
            default=_default_mock_url(),
            help="Where the bundled mock provider listens (default: MOCK_PORT or 9100).",
        )

    def handle(self, *args: Any, env_file: Path, url: str, mock_url: str, **options: Any) -> None:
        known = read_env_file(env_file)
        keys = {name: known.get(name) or generate_key().plaintext for name in KEYS}
        passwords = {
            variable: known.get(variable) or secrets.token_urlsafe(12)
            for _, variable in USERS.values()
        }
        os.environ.update(passwords)
        os.environ["GATEWAY_DEMO_KEY"] = keys["GATEWAY_API_KEY"]
        os.environ["GATEWAY_DEMO_RESEARCH_KEY"] = keys["GATEWAY_DEMO_RESEARCH_KEY"]
        os.environ["GATEWAY_DEMO_OPS_KEY"] = keys["GATEWAY_DEMO_OPS_KEY"]
        config_apply(with_mock_at(config_load(DEMO_CONFIG), mock_url.rstrip("/")))
        base = url.rstrip("/")
        write_env_file(
            env_file,
            {
                "GATEWAY_URL": f"{base}/v1",
                "GATEWAY_CONSOLE_URL": f"{base}/console/",
                "GATEWAY_MOCK_URL": mock_url.rstrip("/"),
                **keys,
                **passwords,
            },
        )
        self.stdout.write(
            self.style.SUCCESS(f"Demo seeded (mock provider at {mock_url}); written to {env_file}.")
        )
        self.stdout.write(f"Console: {base}/console/ — sign in as")
        for username, (role, variable) in USERS.items():
            self.stdout.write(f"  {role + ':':16}{username} / {passwords[variable]}")
