"""The deployment files (Dockerfile, deploy/compose.yaml, deploy/systemd/, deploy/haproxy/) run
only commands the project has, with arguments those commands accept. No container engine runs
the compose file here; tests/drills/test_cluster.py runs the same layout with local processes."""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

from gateway_site.server import build_parser

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
# Commands of other images (PostgreSQL's, Redis's), not the project's.
FOREIGN = {"pg_isready", "redis-server", "redis-cli"}


def check_command(argv: list[str]) -> None:
    """Fails unless `argv` is one of the project's commands, with arguments it accepts."""
    program, *args = argv
    if program in FOREIGN:
        return
    assert Path(program).name in {"python", "python3"}, argv
    if args[:1] == ["-c"]:
        compile(args[1], "<command>", "exec")
        return
    if args[:1] == ["manage.py"]:
        assert args[1] in get_commands(), f"no management command {args[1]!r}"
        return
    assert args[:1] == ["-m"], argv
    module, rest = args[1], args[2:]
    assert importlib.util.find_spec(module) is not None, f"no module {module!r}"
    if module == "gateway_site.server":
        parsed = build_parser().parse_args([arg.replace("%i", "8001") for arg in rest])
        assert parsed.port > 0
    elif module == "celery":
        assert rest[:2] == ["-A", "gateway_site"], rest
        assert hasattr(importlib.import_module("gateway_site.celery"), "app")
        assert rest[2] in {"worker", "beat"}, rest
    else:
        raise AssertionError(f"unexpected module {module!r}")


def _compose() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_every_command_the_compose_file_runs_exists() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    assert {"postgres", "redis", "migrate", "gateway", "worker", "beat", "balancer"} <= set(
        services
    )
    for service in services.values():
        for command in (service.get("command"), service.get("healthcheck", {}).get("test")):
            if command:
                check_command([part for part in command if part not in {"CMD", "CMD-SHELL"}])
    assert services["gateway"]["deploy"]["replicas"] > 1
    assert services["beat"]["deploy"]["replicas"] == 1  # exactly one per installation
    build = services["gateway"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    for volume in services["balancer"]["volumes"]:
        assert (DEPLOY / volume.split(":")[0]).is_file(), volume
    # The balancer reaches the gateways on the port they listen on.
    port = services["gateway"]["command"][services["gateway"]["command"].index("--port") + 1]
    haproxy = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    assert set(re.findall(r"server-template \S+ \d+ gateway:(\d+)", haproxy)) == {port}
    assert (
        services["gateway"]["environment"]["GATEWAY_TRUSTED_PROXIES"]
        == (services["balancer"]["networks"]["gateway"]["ipv4_address"])
    )


def test_the_dockerfile_copies_what_exists_and_runs_the_projects_commands() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for line in re.findall(r"^COPY (.+)$", dockerfile, flags=re.M):
        *sources, _ = line.split()
        for source in sources:
            assert (ROOT / source).exists(), source
    for instruction in ("CMD", "HEALTHCHECK --interval=5s --timeout=2s --retries=3 \\\n    CMD"):
        found = re.search(re.escape(instruction) + r" (\[.*\])", dockerfile)
        assert found, instruction
        check_command(yaml.safe_load(found.group(1)))
    assert re.search(r"^USER gateway$", dockerfile, flags=re.M)  # not root
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    for command in re.findall(r"python (manage\.py \S+)", dockerfile):
        check_command(["python", *command.split()])


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def test_every_systemd_unit_runs_a_command_the_project_has() -> None:
    units = sorted(path.name for path in SYSTEMD.glob("*.service"))
    assert units == ["ai-gateway-beat.service", "ai-gateway-worker.service", "ai-gateway@.service"]
    for name in units:
        unit = _unit(name)
        argv = shlex.split(unit["Service"]["ExecStart"])
        assert argv[0] == unit["Service"]["WorkingDirectory"] + "/.venv/bin/python", argv
        check_command(argv)
        for target in (unit["Unit"].get("PartOf"), unit["Install"].get("WantedBy")):
            if target and target.startswith("ai-gateway"):
                assert (SYSTEMD / target).is_file(), target
    # A process stops within the unit's limit: the grace for calls in flight, then the flush.
    template = _unit("ai-gateway@.service")["Service"]
    assert int(template["TimeoutStopSec"]) > 30
    assert "%i" in template["ExecStart"]


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="HAProxy is not installed")
def test_haproxy_accepts_the_balancers_configuration(tmp_path: Path) -> None:
    from scripts.run_cluster import haproxy_config

    local = tmp_path / "haproxy.cfg"
    local.write_text(
        haproxy_config(
            (DEPLOY / "haproxy" / "haproxy.cfg").read_text(),
            bind="127.0.0.1:18080",
            servers=[("127.0.0.1", 18001), ("127.0.0.1", 18002)],
        )
    )
    for config in (DEPLOY / "haproxy" / "haproxy.cfg", local):
        checked = subprocess.run(
            ["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stderr
    assert "server gw2 127.0.0.1:18002 check" in local.read_text()
