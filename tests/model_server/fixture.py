"""Pytest plugin: the session-scoped ``model_server`` fixture (register with
``pytest_plugins = ["tests.model_server.fixture"]``).

API of the fixture object (:class:`~tests.model_server.server.ModelServer`)::

    model_server.base_url                     # "http://127.0.0.1:<port>"
    model_server.env(**extra)                 # CLI env for offline use (+ extra, e.g. HOME=...)
    model_server.isolated_env(root, **extra)  # same, plus HOME/CLAUDE_CONFIG_DIR/CLAUDE_CODE_TMPDIR under root
    model_server.marker(steps)                # "[[script:<json>]]" to put into a prompt
    token = model_server.add_script(steps, token=None, session_id=None)  # put token in the prompt
    model_server.requests(session_id=None, token=None, kind=None)      # recorded requests (dicts)
    model_server.reset()                      # forget scripts and requests (affects other tests too)

The server lives for the whole test session; tests stay isolated by keying scripts per test (a fresh
token or marker per test, or the session id) and filtering ``requests()`` by token or session id.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import ModelServer


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    """A running scripted model server on a free 127.0.0.1 port."""
    with ModelServer() as server:
        yield server
