"""A fast fake LLM provider speaking the real OpenAI and Anthropic wire formats.

It is the only fake the project allows: the official SDKs must work against it
unmodified. See `behaviour` for the deterministic rules and fault controls.
"""

from mock_provider.app import MockApp, create_app
from mock_provider.config import MockConfig
from mock_provider.testing import MockServer, run_mock_server

__all__ = ["MockApp", "MockConfig", "MockServer", "create_app", "run_mock_server"]
