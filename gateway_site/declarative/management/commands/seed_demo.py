"""Seed the demo of `make run`; write its URL, key and console passwords to .env.demo.

The values in .env.demo are reused on later runs, so the key and passwords stay the same.
"""

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from gateway_site.declarative.services import config_apply, config_load
from tenants.keys import generate_key

DEMO_CONFIG = Path(settings.BASE_DIR) / "config" / "demo.yaml"


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


class Command(BaseCommand):
    help = "Seed the demo tenant, team, key and mock route; write .env.demo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--env-file", type=Path, default=Path(settings.BASE_DIR) / ".env.demo")
        parser.add_argument("--url", default=settings.GATEWAY.public_url)

    def handle(self, *args: Any, env_file: Path, url: str, **options: Any) -> None:
        known = _read_env_file(env_file)
        key = known.get("GATEWAY_API_KEY") or generate_key().plaintext
        os.environ["GATEWAY_DEMO_KEY"] = key
        passwords = {
            name: known.get(name) or secrets.token_urlsafe(12)
            for name in ("GATEWAY_DEMO_DEVELOPER_PASSWORD", "GATEWAY_DEMO_ADMIN_PASSWORD")
        }
        os.environ.update(passwords)
        config_apply(config_load(DEMO_CONFIG))
        base = url.rstrip("/")
        values = {
            "GATEWAY_URL": f"{base}/v1",
            "GATEWAY_API_KEY": key,
            "GATEWAY_CONSOLE_URL": f"{base}/console/",
            **passwords,
        }
        env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
        env_file.chmod(0o600)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo seeded; URL, key and console passwords written to {env_file}."
            )
        )
