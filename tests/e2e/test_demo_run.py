"""`make run`'s steps on ports other than the defaults, with the embedded SQLite database: the
gateway reaches the mock on its port, the README's snippet prints an answer, five users are
printed, and the demo traffic is rolled up, sealed and masked by the time the script says so.

A demo of its own (database, .env file, logs and journal in a temporary folder), so it runs beside
a developer's `make run`.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not PYTHON.exists(), reason="make run's .venv is not set up"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _read_until(stream: IO[str], pattern: str, seconds: float) -> str:
    """The output up to the first line matching `pattern` (the script's progress lines)."""
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if re.search(pattern, line):
            return "".join(seen)
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    folder = tmp_path_factory.mktemp("demo-run")
    ports = {"GATEWAY_PORT": str(_free_port()), "MOCK_PORT": str(_free_port())}
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")},
        **ports,
        "DATABASE_URL": f"sqlite:///{folder / 'gateway.sqlite3'}",
        "GATEWAY_JOURNAL_DIR": str(folder / "journal"),
        "GATEWAY_DEMO_ENV_FILE": str(folder / ".env.demo"),
        "GATEWAY_DEMO_LOG_DIR": str(folder / "logs"),
        "GATEWAY_EGRESS_ALLOW_LOOPBACK": "true",
    }
    manage = [str(PYTHON), "manage.py"]
    subprocess.run([*manage, "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)
    seeded = subprocess.run(
        [
            *manage,
            "seed_demo",
            "--env-file",
            env["GATEWAY_DEMO_ENV_FILE"],
            "--url",
            f"http://127.0.0.1:{ports['GATEWAY_PORT']}",
            "--mock-url",
            f"http://127.0.0.1:{ports['MOCK_PORT']}/v1",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    process = subprocess.Popen(
        ["scripts/run_demo.sh"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the script and everything it starts, stopped as one group
    )
    try:
        assert process.stdout is not None
        printed = _read_until(process.stdout, r"^Demo traffic sent", 120)
        yield {"folder": folder, "env": env, "printed": printed, "seeded": seeded, **ports}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def test_the_run_names_its_ports_and_a_user_per_role(demo: dict[str, object]) -> None:
    printed = str(demo["printed"])

    assert f"http://127.0.0.1:{demo['GATEWAY_PORT']}/v1" in printed
    assert f"http://127.0.0.1:{demo['MOCK_PORT']}/v1" in printed
    for username in ("dev", "compliance", "finance", "admin", "platform"):
        assert re.search(rf"^\s+[a-z ]+:\s+{username} / \S+$", printed, re.MULTILINE), username


def test_the_readme_snippet_prints_the_answer(demo: dict[str, object]) -> None:
    env_file = Path(str(demo["folder"])) / ".env.demo"
    snippet = f"""source {env_file}
.venv/bin/python - <<'PY'
import os
from openai import OpenAI

client = OpenAI(base_url=os.environ["GATEWAY_URL"], api_key=os.environ["GATEWAY_API_KEY"])
reply = client.chat.completions.create(model="demo", messages=[{{"role": "user", "content": "Hello"}}])
print(reply.choices[0].message.content)
PY
"""
    answer = subprocess.run(
        ["bash", "-c", snippet], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )

    assert answer.stdout.strip() == "Mock reply to: Hello"


def test_the_demo_traffic_is_rolled_up_sealed_and_masked(demo: dict[str, object]) -> None:
    database = sqlite3.connect(Path(str(demo["folder"])) / "gateway.sqlite3")
    with database:
        cost = database.execute(
            "SELECT SUM(CAST(cost_usd AS REAL)) FROM billing_usagerollup WHERE granularity = 'day'"
        ).fetchone()[0]
        checkpoints = database.execute("SELECT COUNT(*) FROM audit_auditcheckpoint").fetchone()[0]
        statuses = dict(
            database.execute("SELECT status, COUNT(*) FROM audit_auditrecord GROUP BY status")
        )
        leaked = database.execute(
            "SELECT COUNT(*) FROM audit_auditrecord WHERE request_body LIKE '%jane.roe@%'"
        ).fetchone()[0]
        fallbacks = database.execute(
            "SELECT COUNT(*) FROM audit_auditrecord "
            "WHERE model_requested = 'demo-failover' AND status = 'success'"
        ).fetchone()[0]
    database.close()

    assert cost and cost > 0  # finance has something to show on first visit
    assert checkpoints >= 1  # and compliance a signed checkpoint
    assert statuses["success"] >= 25 and statuses["upstream_error"] >= 1
    assert statuses["rejected"] >= 1
    assert fallbacks == 2
    assert leaked == 0  # the PII policy masked the client's e-mail before it was stored
