"""Seed the demo of `make run` and write its URL and key to .env.demo (reused on later runs)."""

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from declarative.services import config_apply, config_load
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
        config_apply(config_load(DEMO_CONFIG))
        env_file.write_text(f"GATEWAY_URL={url.rstrip('/')}/v1\nGATEWAY_API_KEY={key}\n")
        env_file.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(f"Demo seeded; URL and key written to {env_file}."))
