"""Servers on 127.0.0.1 for tests and benches (moto, MLflow, Ray's dashboard, `mate ui`): a free port to start one
on, and a wait until it answers, since each takes seconds to come up and a request before that is refused."""

from __future__ import annotations

import socket
import time
import urllib.request


def free_port() -> int:
    """A TCP port nothing listens on now (the OS's choice; another process could still take it before we do)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float = 60) -> None:
    """Return once `url` answers an HTTP request; TimeoutError after `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(url)
