"""Fault controls: injected statuses, fail_rate, fail_marker, latency and broken streams."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from mock_provider.testing import MockServer

USER: Any = [{"role": "user", "content": "hello"}]


def _chat(http: httpx.Client, text: str = "hello", **extra: Any) -> httpx.Response:
    body = {"model": "mock-gpt", "messages": [{"role": "user", "content": text}], **extra}
    return http.post("/v1/chat/completions", json=body)


def test_a_429_carries_retry_after_in_the_openai_format(
    provider: MockServer, oai: openai.OpenAI
) -> None:
    provider.configure(status=429, retry_after=2)
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="mock-gpt", messages=USER)
    response = caught.value.response
    assert response.headers["retry-after"] == "2"
    assert response.headers["retry-after-ms"] == "2000"
    error = response.json()["error"]
    assert error["type"] == "rate_limit_exceeded" and error["code"] == "rate_limit_exceeded"
    assert error["param"] is None and error["message"]


def test_a_429_in_the_anthropic_format(provider: MockServer, claude: anthropic.Anthropic) -> None:
    provider.configure(status=429, retry_after=1.5)
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model="mock-claude", max_tokens=10, messages=USER)
    assert caught.value.response.headers["retry-after"] == "1.5"
    assert caught.value.response.headers["retry-after-ms"] == "1500"
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Injected mock error 429"},
    }


def test_the_sdk_honours_retry_after_ms_and_retries(provider: MockServer) -> None:
    provider.configure(status=429, retry_after=0.05, fail_rate=0.5)
    with openai.OpenAI(base_url=provider.openai_base_url, api_key="k", max_retries=2) as client:
        client.chat.completions.create(model="mock-gpt", messages=USER)  # request 0 passes
        client.chat.completions.create(model="mock-gpt", messages=USER)  # 1 fails, 2 passes
    assert [r["status"] for r in provider.requests()] == [200, 429, 200]


def test_a_500_is_a_server_error(provider: MockServer, oai: openai.OpenAI) -> None:
    provider.configure(status=500)
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model="mock-gpt", messages=USER)
    assert caught.value.status_code == 500
    assert caught.value.response.json()["error"]["type"] == "server_error"


def test_a_529_is_an_anthropic_overloaded_error(
    provider: MockServer, claude: anthropic.Anthropic
) -> None:
    provider.configure(status=529)
    with pytest.raises(anthropic.OverloadedError) as caught:
        claude.messages.create(model="mock-claude", max_tokens=10, messages=USER)
    assert caught.value.status_code == 529
    assert caught.value.response.json()["error"]["type"] == "overloaded_error"


def test_a_400_is_an_invalid_request_in_both_formats(http: httpx.Client) -> None:
    oa = http.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": USER},
        headers={"x-mock-status": "400"},
    )
    an = http.post(
        "/v1/messages",
        json={"model": "m", "max_tokens": 5, "messages": USER},
        headers={"x-mock-status": "400"},
    )
    assert oa.status_code == an.status_code == 400
    assert oa.json()["error"]["type"] == "invalid_request_error"
    assert an.json()["error"]["type"] == "invalid_request_error"


def test_a_fail_rate_of_one_half_fails_exactly_every_second_request(
    provider: MockServer, http: httpx.Client
) -> None:
    provider.configure(status=503, fail_rate=0.5)
    statuses = [_chat(http).status_code for _ in range(10)]
    assert statuses == [200, 503] * 5


def test_a_fail_rate_of_zero_never_fails(provider: MockServer, http: httpx.Client) -> None:
    provider.configure(status=500, fail_rate=0)
    assert {_chat(http).status_code for _ in range(5)} == {200}


def test_the_fail_marker_turns_a_request_into_a_500(
    provider: MockServer, claude: anthropic.Anthropic, http: httpx.Client
) -> None:
    provider.configure(fail_marker="EXPLODE")
    assert _chat(http, "please do not fail").status_code == 200
    assert _chat(http, "please EXPLODE now").status_code == 500
    with pytest.raises(anthropic.InternalServerError):
        claude.messages.create(
            model="mock-claude",
            max_tokens=10,
            system="EXPLODE",
            messages=[{"role": "user", "content": "innocent"}],
        )


def test_headers_beat_directives_which_beat_the_config(
    provider: MockServer, http: httpx.Client
) -> None:
    provider.configure(status=500)
    assert _chat(http).status_code == 500
    assert _chat(http, "[mock status=503] hi").status_code == 503
    override = {"x-mock-status": "429"}
    assert (
        http.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "[mock status=503]"}]},
            headers=override,
        ).status_code
        == 429
    )
    # A header status below 400 switches injection off for that request.
    assert (
        http.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": USER},
            headers={"x-mock-status": "200"},
        ).status_code
        == 200
    )


def test_a_bad_directive_is_a_400(http: httpx.Client) -> None:
    assert _chat(http, "[mock nonsense=1]").status_code == 400
    assert _chat(http, "[mock status=abc]").status_code == 400


def test_latency_delays_the_response(provider: MockServer, http: httpx.Client) -> None:
    provider.configure(latency_ms=200)
    started = time.perf_counter()
    assert _chat(http).status_code == 200
    assert time.perf_counter() - started >= 0.2
    started = time.perf_counter()
    assert _chat(http, "[mock latency_ms=0] quick").status_code == 200
    assert time.perf_counter() - started < 0.15


def test_ttft_and_chunk_delay_pace_a_stream(oai: openai.OpenAI) -> None:
    started = time.perf_counter()
    stream = oai.chat.completions.create(
        model="mock-gpt",
        stream=True,
        messages=[{"role": "user", "content": "a b"}],
        extra_headers={"x-mock-ttft-ms": "150", "x-mock-chunk-delay-ms": "30"},
    )
    arrivals = [time.perf_counter() - started for _ in stream]
    assert arrivals[0] >= 0.15
    # 7 chunks (role, 5 words, finish) are spread over 6 gaps of 30 ms.
    assert arrivals[-1] - arrivals[0] >= 6 * 0.03 * 0.9


def test_break_after_chunks_makes_the_openai_stream_raise(oai: openai.OpenAI) -> None:
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oai.chat.completions.create(
            model="mock-gpt",
            stream=True,
            messages=[{"role": "user", "content": "[mock break_after_chunks=3] a long story"}],
        ):
            received.append(chunk)
    assert len(received) == 3


def test_a_paced_stream_breaks_too(http: httpx.Client) -> None:
    body = {"model": "m", "stream": True, "messages": USER}
    headers = {"x-mock-break-after-chunks": "2", "x-mock-chunk-delay-ms": "5"}
    with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()


def test_break_after_chunks_makes_the_anthropic_stream_raise(
    provider: MockServer, claude: anthropic.Anthropic
) -> None:
    provider.configure(break_after_chunks=4)
    texts: list[str] = []
    # The SDK lets its transport's RemoteProtocolError through (or wraps it, by version).
    with (
        pytest.raises(Exception, match=r"incomplete|peer closed|Connection"),
        claude.messages.stream(model="mock-claude", max_tokens=10, messages=USER) as stream,
    ):
        texts.extend(stream.text_stream)
    assert texts == ["Mock"]  # message_start, block start, ping, one delta


def test_auth_is_enforced_in_each_wire_format_when_a_key_is_required(
    provider: MockServer, http: httpx.Client
) -> None:
    provider.configure(required_api_key="secret")
    with (
        openai.OpenAI(base_url=provider.openai_base_url, api_key="wrong", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        bad.chat.completions.create(model="mock-gpt", messages=USER)
    assert caught.value.code == "invalid_api_key"
    with (
        anthropic.Anthropic(base_url=provider.base_url, api_key="wrong", max_retries=0) as bad_a,
        pytest.raises(anthropic.AuthenticationError) as caught_a,
    ):
        bad_a.messages.create(model="mock-claude", max_tokens=5, messages=USER)
    assert caught_a.value.response.json()["error"]["type"] == "authentication_error"
    with openai.OpenAI(base_url=provider.openai_base_url, api_key="secret") as good:
        assert good.chat.completions.create(model="mock-gpt", messages=USER).choices
    with anthropic.Anthropic(base_url=provider.base_url, api_key="secret") as good_a:
        assert good_a.messages.create(model="mock-claude", max_tokens=5, messages=USER).content
    # Either header works on either endpoint.
    body = {"model": "m", "max_tokens": 5, "messages": USER}
    assert http.post(
        "/v1/messages", json=body, headers={"authorization": "Bearer secret"}
    ).is_success
    assert http.post("/v1/messages", json=body).status_code == 401
    chat = {"model": "m", "messages": USER}
    assert http.post("/v1/chat/completions", json=chat, headers={"x-api-key": "secret"}).is_success
    wrong = http.post("/v1/chat/completions", json=chat, headers={"x-api-key": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
