"""One mock server for the whole folder; every test starts from the startup state."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from mock_provider.testing import MockServer, run_mock_server


@pytest.fixture(scope="session")
def provider() -> Iterator[MockServer]:
    with run_mock_server() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_provider(provider: MockServer) -> None:
    provider.reset()


@pytest.fixture
def oai(provider: MockServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=provider.openai_base_url, api_key="sk-test", max_retries=0) as c:
        yield c


@pytest.fixture
def claude(provider: MockServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=provider.base_url, api_key="sk-ant", max_retries=0) as c:
        yield c


@pytest.fixture
def http(provider: MockServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=provider.base_url, timeout=5) as c:
        yield c
