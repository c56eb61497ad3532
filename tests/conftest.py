"""Shared pytest fixtures. Add new fixtures below the existing ones, one section each."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


# --- MongoDB ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory) -> str:
    """URL of a real MongoDB-wire server for this test session, without a database name.

    ``$GENLAB_TEST_MONGO`` (e.g. ``mongodb://127.0.0.1:27017``) points the tests at a server that is
    already running. Otherwise ``bin/mongo-up`` installs SecantusDB into ``.venv-mongo`` if needed
    (PyPI only) and starts it in memory on a free loopback port; ``bin/mongo-down`` stops it at the
    end of the session. A server that cannot start fails the tests that need it (never a skip).
    Tests should use their own database names so they do not see each other's runs.
    """
    url = os.environ.get("GENLAB_TEST_MONGO")
    if url:
        yield url
        return
    work = tmp_path_factory.mktemp("mongo")
    log = work / "secantusd.log"
    env = {
        **os.environ,
        "MONGO_PORT": str(_free_port()),
        "MONGO_DATA": ":memory:",
        "MONGO_PIDFILE": str(work / "secantusd.pid"),
        "MONGO_LOG": str(log),
    }
    up = subprocess.run([str(REPO / "bin" / "mongo-up")], env=env, capture_output=True, text=True, timeout=900)
    if up.returncode != 0:
        pytest.fail(
            f"bin/mongo-up failed (exit {up.returncode}); server log: {log}\n{up.stderr[-3000:]}",
            pytrace=False,
        )
    try:
        yield up.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(REPO / "bin" / "mongo-down")], env=env, check=False, timeout=60)
