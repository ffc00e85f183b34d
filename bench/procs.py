"""The servers the bench starts: each in its own process group, logged to a file, always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path


class ServerError(RuntimeError):
    """A server did not come up, or died; the message carries the tail of its log."""


def free_port() -> int:
    """A port nothing listens on right now (fixed ports would clash with `make run`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A child process serving HTTP on 127.0.0.1:`port`; stdout and stderr go to `log_path`."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        log_path: Path,
        env: Mapping[str, str],
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.log_path = log_path
        with log_path.open("wb") as log:
            # A new session = a new process group: the whole group can be killed, and a Ctrl-C
            # aimed at the bench does not kill the server before the bench has read its state.
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, path: str, timeout_s: float = 30.0) -> float:
        """Poll GET `path` until it answers 200; return the seconds it took."""
        start = time.monotonic()
        url = f"http://127.0.0.1:{self.port}{path}"
        while time.monotonic() - start < timeout_s:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - start
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise ServerError(f"{self.name} not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise ServerError(f"{self.name} died with {self.proc.returncode}:\n{self.log_tail()}")

    def memory_kib(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak) of the server process, in KiB."""
        values: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
        return values

    def group_rss_kib(self) -> tuple[int, int]:
        """VmRSS summed over every process of the server's group (a multi-worker server's
        supervisor and workers), and how many processes that is."""
        total = count = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if stat_pgid(stat.read_text()) != self.pid:
                    continue
                rss = status_rss_kib((stat.parent / "status").read_text())
            except (OSError, ValueError):
                continue  # a process that ended while we looked
            total, count = total + rss, count + 1
        return total, count

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers; safe to call twice."""
        if self.proc.poll() is not None:
            return
        _signal_group(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            _signal_group(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        # Any child the server left behind in its group (the group id is the server's pid,
        # just reaped, so it cannot have been reused yet).
        _signal_group(self.pid, signal.SIGKILL)


def stat_pgid(stat: str) -> int:
    """The process group id in the text of /proc/PID/stat. The command name (field 2) sits in
    parentheses and may itself hold spaces or parentheses, so count fields from the last ')'."""
    after_name = stat[stat.rindex(")") + 1 :].split()
    return int(after_name[2])  # state, ppid, pgrp


def status_rss_kib(status: str) -> int:
    """VmRSS in KiB from the text of /proc/PID/status; 0 for a process with no memory of its
    own left (a zombie)."""
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key == "VmRSS":
            return int(rest.split()[0])
    return 0


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
