"""The guardrails never touch the network: no model download, no public-suffix list fetch."""

from __future__ import annotations

import ipaddress
import socket

import pytest
import tldextract.tldextract

from routing.guardrails.core.checks import check_request
from routing.guardrails.core.injection import DetectorSet
from routing.guardrails.core.pii import PiiScanner
from routing.guardrails.core.policy import PolicySpec, compile_policy
from tests.guardrails.support import CARD, EMAIL, IBAN


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every connection to a non-loopback address fails (and is remembered)."""
    attempts: list[object] = []
    original = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if isinstance(host, str):
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if loopback:
                return original(self, address)
        attempts.append(address)
        raise OSError(f"network access attempted in a test: {address}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: attempts.append(a) or [])
    return attempts


def test_pii_detection_works_with_the_network_blocked(no_network, monkeypatch):
    # A fresh default extractor would fetch the public-suffix list on first use.
    monkeypatch.setattr(tldextract.tldextract, "TLD_EXTRACTOR", tldextract.tldextract.TLDExtract())
    scanner = PiiScanner()  # built here, under the block: no model download either
    policy = compile_policy("offline", PolicySpec.model_validate({"pii": {}, "injection": {}}))
    payload = {"messages": [{"role": "user", "content": f"{EMAIL} {CARD} {IBAN}"}]}

    result = check_request(policy, payload, scanner, DetectorSet())

    assert result.payload["messages"][0]["content"] == "<EMAIL_1> <CARD_1> <IBAN_1>"
    assert no_network == []
    assert tldextract.tldextract.TLD_EXTRACTOR.suffix_list_urls == ()
