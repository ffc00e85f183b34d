from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DataError

from gateway_site.declarative.services import ConfigError, config_apply, config_load


class Command(BaseCommand):
    help = "Create or update providers, deployments, routes, tenants, teams, users and keys from a YAML file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--check", action="store_true", help="validate the file and change nothing"
        )

    def handle(self, *args: Any, path: Path, check: bool, **options: Any) -> None:
        try:
            config = config_load(path)
            if check:
                self.stdout.write(self.style.SUCCESS(f"{path} is valid."))
                return
            report = config_apply(config)
        except ConfigError as exc:
            raise CommandError(str(exc)) from exc
        except DataError as exc:
            # A NUL in a string or a number past its column: the file's fault, not a crash. The
            # apply is one transaction, so what it wrote before this was rolled back.
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "out of range"
            raise CommandError(
                f"{path}: a value cannot be stored ({reason}); nothing was changed."
            ) from exc
        summary = ", ".join(f"{count} {kind}" for kind, count in report.counts.items()) or "nothing"
        self.stdout.write(self.style.SUCCESS(f"Applied {path}: {summary}."))
        for where, plaintext in report.generated_keys.items():
            self.stdout.write(f"New {where}: {plaintext}  (shown once: store it now)")
