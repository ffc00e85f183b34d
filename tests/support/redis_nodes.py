"""What the Redis Cluster and Sentinel test helpers share: Debian's `redis-server` started on free
ports, each node in its own folder, waited for, and stopped with its folder removed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import redis


@dataclass
class RedisProcesses:
    directory: Path
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def node(self, port: int, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, db=db, socket_timeout=5)

    def start(self, port: int, *options: str) -> Path:
        """A `redis-server` on `port` without persistence, logging to its own folder."""
        home = self.directory / str(port)
        home.mkdir()
        self.processes[port] = subprocess.Popen(
            [
                redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(home),
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--repl-diskless-sync-delay", "0", "--logfile", str(home / "redis.log"),
                *options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        return home

    def wait_ping(self, ports: Iterable[int], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        for port in ports:
            while True:
                try:
                    self.node(port).ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def redis_server() -> str:
    server = shutil.which("redis-server")
    if not server:
        raise RuntimeError("redis-server is needed for the Redis Cluster and Sentinel tests")
    return server


def _free(port: int) -> bool:
    with socket.socket() as probe:
        # As redis-server binds: a port a closed connection still waits on is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(candidates: range, count: int, *, with_bus: bool = False) -> list[int]:
    """`count` ports of `candidates` nobody listens on (and port + 10000, a cluster node's bus)."""
    found: list[int] = []
    for port in candidates:
        if _free(port) and (not with_bus or _free(port + 10_000)):
            found.append(port)
            if len(found) == count:
                return found
    raise RuntimeError(f"no {count} free ports in {candidates}")
