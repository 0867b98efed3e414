"""Fixtures for the text tests: the fake OpenAI-compatible server (see fake_openai.py)."""

from __future__ import annotations

import pytest

from .fake_openai import PROXY_VARS, FakeLLM


@pytest.fixture
def fake_llm(monkeypatch):
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    server = FakeLLM().start()
    yield server
    server.stop()
