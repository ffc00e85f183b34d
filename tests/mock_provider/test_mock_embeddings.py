"""Embeddings in both encodings, decoded by the official openai SDK."""

from __future__ import annotations

import base64
import math
import struct

import httpx
import openai


def test_the_sdk_default_base64_encoding_decodes_to_the_float_vectors(oai: openai.OpenAI) -> None:
    default = oai.embeddings.create(model="mock-embed", input=["first text", "second text"])
    floats = oai.embeddings.create(
        model="mock-embed", input=["first text", "second text"], encoding_format="float"
    )
    assert [d.index for d in default.data] == [0, 1]
    assert all(len(d.embedding) == 16 for d in default.data)
    # float32 on the wire both ways, so the two encodings agree exactly.
    assert [d.embedding for d in default.data] == [d.embedding for d in floats.data]
    assert default.data[0].embedding != default.data[1].embedding
    assert default.usage.prompt_tokens == default.usage.total_tokens == 4
    assert default.model == "mock-embed"


def test_vectors_are_unit_length_and_deterministic(oai: openai.OpenAI) -> None:
    one = oai.embeddings.create(model="mock-embed", input="hello", encoding_format="float")
    two = oai.embeddings.create(model="mock-embed", input="hello", encoding_format="float")
    vector = one.data[0].embedding
    assert vector == two.data[0].embedding
    assert math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-5)


def test_dimensions_sets_the_vector_length(oai: openai.OpenAI) -> None:
    result = oai.embeddings.create(model="mock-embed", input="hello", dimensions=64)
    assert len(result.data[0].embedding) == 64


def test_base64_is_little_endian_float32(http: httpx.Client) -> None:
    body = {"model": "mock-embed", "input": "x", "encoding_format": "base64", "dimensions": 4}
    encoded = http.post("/v1/embeddings", json=body).json()["data"][0]["embedding"]
    floats = http.post("/v1/embeddings", json={**body, "encoding_format": "float"}).json()
    raw = base64.b64decode(encoded)
    assert len(raw) == 16
    assert list(struct.unpack("<4f", raw)) == floats["data"][0]["embedding"]


def test_token_array_inputs_count_their_tokens(oai: openai.OpenAI) -> None:
    single = oai.embeddings.create(model="mock-embed", input=[1, 2, 3])
    batch = oai.embeddings.create(model="mock-embed", input=[[1, 2], [3, 4, 5]])
    assert len(single.data) == 1 and single.usage.prompt_tokens == 3
    assert len(batch.data) == 2 and batch.usage.prompt_tokens == 5


def test_a_bad_input_is_a_400_in_the_openai_format(oai: openai.OpenAI) -> None:
    try:
        oai.embeddings.create(model="mock-embed", input=[{"no": "pe"}])  # type: ignore[arg-type]
    except openai.BadRequestError as exc:
        assert exc.status_code == 400
        assert exc.type == "invalid_request_error"
    else:
        raise AssertionError("expected a 400")
