"""A real Sentinel-managed Redis for the tests: Debian's `redis-server`, one master, one replica
and three sentinels (`redis-server <config> --sentinel`) on free ports, torn down after use."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tests.support.redis_nodes import RedisProcesses, free_ports, redis_server

MASTER_NAME = "gateway"
DOWN_AFTER_MS = 1000
_PORT_RANGE = range(28_000, 30_000, 3)


@dataclass(kw_only=True)
class SentinelNodes(RedisProcesses):
    master_port: int
    replica_port: int
    sentinel_ports: list[int]

    @property
    def sentinels(self) -> str:
        """As REDIS_SENTINELS takes them."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def master_as_sentinels_see_it(self) -> int:
        return _master_port(self.node(self.sentinel_ports[0]))

    def wait_master(self, port: int, timeout: float = 30.0) -> None:
        """Every sentinel names `port` as the master, and the master has a synced replica."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                named = {_master_port(self.node(s)) for s in self.sentinel_ports}
                role = self.node(port).info("replication")
                if named == {port} and role["role"] == "master":
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sentinels did not agree on master {port}")
            time.sleep(0.1)

    def wait_synced(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = self.node(self.replica_port).info("replication")
                if info.get("master_link_status") == "up":
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the replica did not sync with its master")
            time.sleep(0.1)

    def wait_sentinels_know_each_other(self, timeout: float = 30.0) -> None:
        """Each sentinel has found the replica and the other two (needed for a quorum)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                ready = all(
                    _master_state(self.node(s))["num-other-sentinels"] == 2
                    and _master_state(self.node(s))["num-slaves"] >= 1
                    for s in self.sentinel_ports
                )
                if ready:
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the sentinels did not find each other")
            time.sleep(0.1)


def _master_port(sentinel: redis.Redis) -> int:
    address: Any = sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
    return int(address[1])


def _master_state(sentinel: redis.Redis) -> dict[str, Any]:
    state: Any = sentinel.sentinel_master(MASTER_NAME)
    return dict(state)


def start_sentinel_set() -> SentinelNodes:
    server = redis_server()
    ports = free_ports(_PORT_RANGE, 5)
    nodes = SentinelNodes(
        directory=Path(tempfile.mkdtemp(prefix="gw-sentinel-")),
        master_port=ports[0],
        replica_port=ports[1],
        sentinel_ports=ports[2:],
    )
    try:
        nodes.start(nodes.master_port)
        nodes.start(nodes.replica_port, "--replicaof", "127.0.0.1", str(nodes.master_port))
        nodes.wait_ping([nodes.master_port, nodes.replica_port])
        nodes.wait_synced()
        for port in nodes.sentinel_ports:
            home = nodes.directory / str(port)
            home.mkdir()
            config = home / "sentinel.conf"
            # Sentinel rewrites its configuration file as it learns: it must be writable.
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {home}\n"
                f"logfile {home / 'sentinel.log'}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {nodes.master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            nodes.processes[port] = subprocess.Popen(
                [server, str(config), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        nodes.wait_ping(nodes.sentinel_ports)
        nodes.wait_sentinels_know_each_other()
        nodes.wait_master(nodes.master_port)
    except BaseException:
        nodes.stop()
        raise
    return nodes


def sentinel_set() -> Iterator[SentinelNodes]:
    """For a fixture: `yield from sentinel_set()`."""
    nodes = start_sentinel_set()
    try:
        yield nodes
    finally:
        nodes.stop()
