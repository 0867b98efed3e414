"""Test Ray clusters on this machine, stopped by their own processes: `ray stop --force` would also kill every other
Ray on the machine (a developer's running sweep, another test's local Ray)."""

from __future__ import annotations

import os
import signal
import time

from mate.localnet import free_port

# ports `ray start` would otherwise take at their defaults, which another Ray on the machine may hold (the head's job
# agent then never registers: "No available agent to submit job")
NODE_PORTS = ("--dashboard-agent-listen-port", "--metrics-export-port", "--dashboard-agent-grpc-port",
              "--runtime-env-agent-port")


def free_port_flags(head: bool = False) -> list[str]:
    """`ray start` flags that put a node's agents on free ports (and the head's Ray Client server)."""
    return [f"{flag}={free_port()}" for flag in (*NODE_PORTS, *(("--ray-client-server-port",) if head else ()))]


def processes_mentioning(*keys: str) -> list[int]:
    """Pids whose command line contains any of `keys` (a cluster's temp dir, its GCS address)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if any(k in cmd for k in keys):
            out.append(int(pid))
    return out


def stop_processes(*keys: str, grace: float = 10.0) -> None:
    """SIGTERM every process that names one of `keys`, SIGKILL what is left after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in processes_mentioning(*keys):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.time() + grace
        while sig == signal.SIGTERM and processes_mentioning(*keys) and time.time() < deadline:
            time.sleep(0.3)
