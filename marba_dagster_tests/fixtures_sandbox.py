"""Sandbox fixtures: one real server per test session, reset before each test.

Registered by ``conftest.py`` (``pytest_plugins``). ``sandbox`` gives a server with no
faults, an empty request log, default LLM limits and the real clock.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from marba_dagster.sandbox import SandboxServer


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """The sandbox on a free loopback port for the whole session."""
    with SandboxServer(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxServer]:
    """The session's sandbox, reset (faults, request log, limits, clock) for this test."""
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.faults.clear()
