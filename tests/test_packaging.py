"""A wheel install must serve the whole product: every module, migration, template and static
file of the rooms is in the wheel, where the settings look for it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("gateway_site", "tenants", "routing", "audit", "billing", "mock_provider")
SHIPPED_SUFFIXES = {".py", ".html", ".css", ".js", ".yaml", ".tiktoken"}


def _tree_files() -> set[str]:
    """What the wheel must hold, by its path inside the wheel."""
    wanted = set()
    for room in ROOMS:
        for path in (ROOT / room).rglob("*"):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix in SHIPPED_SUFFIXES or path.parent.name in {"encodings", "htmx"}:
                wanted.add(path.relative_to(ROOT).as_posix())
    for path in (ROOT / "templates").rglob("*.html"):
        wanted.add("gateway_site/" + path.relative_to(ROOT).as_posix())
    return wanted


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    leftovers = [p for p in (ROOT / "build", *ROOT.glob("*.egg-info")) if not p.exists()]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=out,  # setuptools' build/ and egg-info go beside the wheel, not into the tree
    )
    for path in leftovers:  # setuptools builds in the tree: leave it as it was
        shutil.rmtree(path, ignore_errors=True)
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_holds_every_module_migration_template_and_static_file(
    wheel_files: set[str],
) -> None:
    missing = sorted(_tree_files() - wheel_files)

    assert not missing, f"{len(missing)} files of the tree are not in the wheel: {missing[:20]}"
    assert any(name.startswith("gateway_site/templates/console/") for name in wheel_files)


def test_the_wheel_ships_no_tests_or_harness(wheel_files: set[str]) -> None:
    tops = {name.split("/", 1)[0] for name in wheel_files if "/" in name}

    assert tops - {f"ai_gateway-{_version()}.dist-info"} == set(ROOMS)


def test_templates_live_in_the_top_level_folder_only() -> None:
    in_apps = [
        path.relative_to(ROOT).as_posix()
        for room in ROOMS
        for path in (ROOT / room).rglob("templates/**/*.html")
    ]

    assert not in_apps, f"templates outside templates/: {in_apps}"
    assert Path(settings.TEMPLATES[0]["DIRS"][0]) == ROOT / "templates"


def _version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return text.split('version = "', 1)[1].split('"', 1)[0]
