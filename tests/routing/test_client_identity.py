"""Known clients' identity strings become an end user (the person) and a session (the run)."""

from __future__ import annotations

import json

import pytest

from routing.client_identity import claude_code_identity, codex_context, codex_end_user

ACCOUNT = "5f0c3b8e-8d1e-4c3a-9a51-0a7b2d1c4e6f"
SESSION = "9b1d2f3a-4c5e-4f60-8a7b-1c2d3e4f5a6b"
DEVICE = "d" * 64


@pytest.mark.parametrize(
    "user_id",
    [
        json.dumps({"device_id": DEVICE, "account_uuid": ACCOUNT, "session_id": SESSION}),
        f"user_{DEVICE}_account_{ACCOUNT}_session_{SESSION}",  # before Claude Code 2.1.78
    ],
    ids=["json", "legacy"],
)
def test_claude_code_user_id_is_the_account_with_the_session_apart(user_id):
    known = claude_code_identity(user_id)
    assert known is not None
    assert known.end_user == ACCOUNT
    assert known.context == {
        "client": "claude-code",
        "device_id": DEVICE,
        "account_uuid": ACCOUNT,
        "session_id": SESSION,
    }


def test_without_an_account_the_device_is_the_end_user():
    user_id = json.dumps({"device_id": DEVICE, "account_uuid": "", "session_id": SESSION})
    known = claude_code_identity(user_id)
    assert known is not None and known.end_user == DEVICE
    assert "account_uuid" not in known.context


@pytest.mark.parametrize("user", ["advisor-17", "{not json", '{"name": "x"}', "[]", ""])
def test_other_user_strings_are_left_as_they_are(user):
    assert claude_code_identity(user) is None


def test_codex_client_metadata_is_kept_with_its_session_lifted_out():
    metadata = {"session_id": SESSION, "turn_id": "t-1"}
    assert codex_context(metadata) == {"client_metadata": metadata, "session_id": SESSION}
    assert codex_context(None) == {} and codex_context("x") == {}


def test_codex_installation_is_the_end_user_when_no_user_is_named():
    installation = "95da3e3d-afc2-4d0c-a478-1db903fdcba6"
    metadata = {"session_id": SESSION, "x-codex-installation-id": f" {installation} "}
    assert codex_end_user(metadata) == installation
    assert codex_end_user({"session_id": SESSION}) == "" == codex_end_user(None)
