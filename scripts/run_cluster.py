"""Run the deployment of docs/deployment.md on one machine: N gateway processes behind HAProxy,
with a Celery worker and beat, step by step as the guide says.

    python scripts/run_cluster.py --gateways 4 --port 8080 --first-port 8001 --state var/cluster

Every setting comes from the environment (DATABASE_URL, REDIS_URL, REDIS_CLUSTER, …), as for a
real deployment. Steps: migrate, collectstatic, an empty PROMETHEUS_MULTIPROC_DIR, one
`python -m gateway_site.server` per process on its own port, wait for each /readyz, then
HAProxy with deploy/haproxy/haproxy.cfg (its `server-template` lines written out as one
`server` line per local process), then Celery. `<state>/cluster.json` says what runs where
(tests/drills/test_cluster.py reads it). SIGTERM or Ctrl-C stops everything: HAProxy first,
then the gateways (each finishes its calls in flight and flushes its audit writer), then Celery.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
READY_TIMEOUT_S = 120


def haproxy_config(template: str, *, bind: str, servers: list[tuple[str, int]]) -> str:
    """deploy/haproxy/haproxy.cfg for local processes: the frontend binds `bind`, and every
    `server-template` line becomes one `server` line per (host, port), with its options."""
    lines = []
    for line in template.splitlines():
        stripped = line.strip()
        if stripped.startswith("bind "):
            lines.append(f"    bind {bind}")
        elif stripped.startswith("server-template "):
            match = re.match(r"server-template (\S+) \S+ \S+ (.*)$", stripped)
            if match is None:
                raise ValueError(f"unexpected server-template line: {stripped}")
            prefix, options = match.groups()
            options = re.sub(r"\s*(resolvers \S+|init-addr \S+)", "", options)
            for number, (host, port) in enumerate(servers, start=1):
                lines.append(f"    server {prefix}{number} {host}:{port} {options}")
        elif stripped.startswith(("resolvers ", "nameserver ", "hold ")):
            continue  # the container network's DNS: not used on one machine
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, check=True)  # noqa: S603


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own processes
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait_ready(url: str, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _ready(url):
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(
                f"{what} exited with {process.returncode} while starting; {log}:\n{tail}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was not ready within {READY_TIMEOUT_S} s ({url})")
        time.sleep(0.2)


class Cluster:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.state = Path(args.state).resolve()
        self.gateways: list[tuple[str, int, subprocess.Popen[bytes]]] = []
        self.haproxy: subprocess.Popen[bytes] | None = None
        self.celery: list[subprocess.Popen[bytes]] = []

    def _log(self, name: str) -> int:
        return os.open(self.state / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self._log(name)
        try:
            # Our own commands, no shell.
            return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)  # noqa: S603
        finally:
            os.close(log)

    def start(self) -> None:
        args = self.args
        self.state.mkdir(parents=True, exist_ok=True)
        if not args.no_migrate:
            print("migrate (once per release, before the new processes start)", flush=True)
            _manage("migrate", "--noinput", "--verbosity", "0")
        print("collectstatic (each process serves the files itself)", flush=True)
        _manage("collectstatic", "--noinput", "--verbosity", "0")
        # /metrics adds up every process of the machine from here; it must start empty.
        metrics = self.state / "prometheus"
        shutil.rmtree(metrics, ignore_errors=True)
        metrics.mkdir()
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
        env.setdefault("GATEWAY_JOURNAL_DIR", str(self.state / "journal"))
        for number in range(1, args.gateways + 1):
            port = args.first_port + number - 1
            name = f"gw{number}"
            command = [
                sys.executable, "-m", "gateway_site.server",
                "--host", args.host, "--port", str(port),
            ]  # fmt: skip
            print(f"{name}: {' '.join(command[1:])}", flush=True)
            self.gateways.append((name, port, self._spawn(name, command, env)))
        for name, port, process in self.gateways:
            _wait_ready(
                f"http://{args.host}:{port}/readyz", process, name, self.state / f"{name}.log"
            )
        config = self.state / "haproxy.cfg"
        config.write_text(
            haproxy_config(
                HAPROXY_CONFIG.read_text(),
                bind=f"{args.host}:{args.port}",
                servers=[(args.host, port) for _, port, _ in self.gateways],
            )
        )
        haproxy = shutil.which("haproxy")
        if haproxy is None:
            raise RuntimeError("HAProxy is not installed (Debian package 'haproxy')")
        print(f"haproxy -f {config}", flush=True)
        self.haproxy = self._spawn("haproxy", [haproxy, "-db", "-f", str(config)], env)
        _wait_ready(
            f"http://{args.host}:{args.port}/readyz",
            self.haproxy,
            "haproxy",
            self.state / "haproxy.log",
        )
        if not args.no_celery:
            celery = [sys.executable, "-m", "celery", "-A", "gateway_site"]
            worker = [*celery, "worker", "--concurrency", "1", "--loglevel", "WARNING"]
            beat = [*celery, "beat", "--schedule", str(self.state / "celerybeat-schedule")]
            print("celery worker, celery beat (one beat per installation)", flush=True)
            self.celery = [self._spawn("celery-worker", worker, env)]
            self.celery.append(self._spawn("celery-beat", [*beat, "--loglevel", "WARNING"], env))
        self._write_state()
        print(f"ready: http://{args.host}:{args.port}", flush=True)

    def _write_state(self) -> None:
        state = {
            "balancer": f"http://{self.args.host}:{self.args.port}",
            "gateways": [
                {"name": name, "url": f"http://{self.args.host}:{port}", "pid": process.pid}
                for name, port, process in self.gateways
            ],
            "haproxy_pid": self.haproxy.pid if self.haproxy else None,
            "celery_pids": [process.pid for process in self.celery],
        }
        partial = self.state / "cluster.json.partial"
        partial.write_text(json.dumps(state, indent=2))
        partial.replace(self.state / "cluster.json")

    def stop(self) -> None:
        """Out of the balancer first, then each gateway finishes its calls (SIGTERM)."""
        if self.haproxy is not None:
            _stop([self.haproxy], grace=5)
        _stop([process for _, _, process in self.gateways], grace=40)
        _stop(self.celery, grace=20)


def _stop(processes: list[subprocess.Popen[bytes]], *, grace: float) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateways", type=int, default=4, help="processes (one per core)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="the balancer's port")
    parser.add_argument("--first-port", type=int, default=8001, help="gw1's; gw2 the next…")
    parser.add_argument("--state", default=str(ROOT / "var" / "cluster"))
    parser.add_argument("--no-migrate", action="store_true")
    parser.add_argument("--no-celery", action="store_true")
    args = parser.parse_args(argv)
    cluster = Cluster(args)
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        cluster.start()
        while not stopping:
            time.sleep(0.2)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
