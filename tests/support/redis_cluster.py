"""A real Redis Cluster for the tests: Debian's `redis-server` in cluster mode, three masters
with one replica each, on free ports, torn down at the end of the session."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.redis_nodes import RedisProcesses, free_ports, redis_server

# Ports are taken from here; each node's cluster bus listens on port + 10000.
_PORT_RANGE = range(23_000, 27_000, 7)
NODE_TIMEOUT_MS = 1000


@dataclass(kw_only=True)
class RedisClusterNodes(RedisProcesses):
    ports: list[int]

    @property
    def url(self) -> str:
        """A live node's address: a test may have killed the first one."""
        live = [port for port in self.ports if self.processes[port].poll() is None]
        return f"redis://127.0.0.1:{live[0]}/0"

    def roles(self) -> dict[int, str]:
        """port → "master" | "slave", as each live node sees itself."""
        found = {}
        for port, process in self.processes.items():
            if process.poll() is None:
                found[port] = self.node(port).info("replication")["role"]
        return found

    def synced_replicas(self) -> int:
        return sum(
            1
            for port in self.roles()
            if self.node(port).info("replication").get("master_link_status") == "up"
        )

    def replica_of(self, master_port: int) -> int:
        for port, role in self.roles().items():
            info = self.node(port).info("replication")
            if role == "slave" and int(info["master_port"]) == master_port:
                return port
        raise LookupError(f"no replica of {master_port}")

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Every live node says the cluster is ok and every slot is served by a live master."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if all(
                    b"cluster_state:ok" in self.node(port).execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
                    for port, process in self.processes.items()
                    if process.poll() is None
                ):
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the Redis Cluster did not become ready")
            time.sleep(0.1)


def start_cluster(*, masters: int = 3, replicas: int = 1) -> RedisClusterNodes:
    redis_server()
    cli = shutil.which("redis-cli")
    if not cli:
        raise RuntimeError("redis-cli is needed for the Redis Cluster tests")
    nodes = RedisClusterNodes(
        directory=Path(tempfile.mkdtemp(prefix="gw-cluster-")),
        ports=free_ports(_PORT_RANGE, masters * (1 + replicas), with_bus=True),
    )
    try:
        for port in nodes.ports:
            nodes.start(
                port,
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                # A replica may take over however long it was cut off from its master.
                "--cluster-replica-validity-factor", "0",
            )  # fmt: skip
        nodes.wait_ping(nodes.ports)
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in nodes.ports),
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        nodes.wait_ok()
        # Every replica has synced with its master before a test fails one over.
        deadline = time.monotonic() + 30
        while nodes.synced_replicas() < masters * replicas:
            if time.monotonic() > deadline:
                raise TimeoutError("the replicas did not attach")
            time.sleep(0.1)
    except BaseException:
        nodes.stop()
        raise
    return nodes


def cluster_nodes() -> Iterator[RedisClusterNodes]:
    """For a session fixture: `yield from cluster_nodes()`."""
    nodes = start_cluster()
    try:
        yield nodes
    finally:
        nodes.stop()
