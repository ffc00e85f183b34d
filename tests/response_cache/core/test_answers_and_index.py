"""Stored answers replay as a valid stream; stores expire and purge; the index finds neighbours."""

from __future__ import annotations

import time

import numpy as np
import orjson

from routing.cache.core import semantic
from routing.cache.core.answers import CachedAnswer, complete, replay_events
from routing.cache.core.semantic import SemanticIndex
from routing.cache.core.stores import MemoryAnswerStore
from routing.core.stream_tap import StreamTap

ANSWER = {
    "id": "chatcmpl-old",
    "object": "chat.completion",
    "created": 1,
    "model": "mock-gpt",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "A" * 150,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
}


def cached() -> CachedAnswer:
    return CachedAnswer(ANSWER, "req_old", "mock-gpt", "mock-ok", "", "0.0012")


def test_a_replayed_stream_reassembles_to_the_stored_answer():
    events = list(replay_events(cached(), "req_new", include_usage=True))
    assert events[-1] == b"data: [DONE]\n\n"
    tap = StreamTap()
    for event in events[:-1]:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        tap.feed(orjson.loads(event[6:]))
    replayed = tap.assembled_response()
    assert replayed["id"] == "chatcmpl-new"
    assert replayed["choices"][0]["message"] == ANSWER["choices"][0]["message"]
    assert replayed["choices"][0]["finish_reason"] == "tool_calls"
    assert replayed["usage"] == ANSWER["usage"]


def test_only_whole_answers_are_kept():
    assert complete(ANSWER)
    cut = {"choices": [{"index": 0, "message": {}, "finish_reason": "length"}]}
    assert not complete(cut) and not complete({"choices": []})


def test_an_answer_round_trips_and_garbage_is_a_miss():
    answer = cached()
    assert CachedAnswer.from_bytes(answer.to_bytes()) == answer
    assert CachedAnswer.from_bytes(b'{"other": 1}') is None


async def test_the_memory_store_expires_evicts_and_purges():
    store = MemoryAnswerStore(max_entries=2)
    await store.put("gwc:t1:a", b"1", ttl_s=60)
    await store.put("gwc:t1:b", b"2", ttl_s=60)
    await store.get("gwc:t1:a")  # used: b is now the least recently used
    await store.put("gwc:t2:c", b"3", ttl_s=60)
    assert await store.get("gwc:t1:b") is None
    assert await store.purge("gwc:t1:*") == 1
    assert await store.get("gwc:t2:c") == b"3"
    await store.put("gwc:t2:d", b"4", ttl_s=0)
    assert await store.get("gwc:t2:d") is None


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_the_index_finds_the_nearest_live_question_above_the_threshold():
    index = SemanticIndex()
    later = time.time() + 60
    index.add("p", "close", unit(1, 0.1), later, frozenset({"smith", "allocation"}))
    index.add("p", "far", unit(0, 1), later)
    index.add("p", "expired", unit(1, 0), time.time() - 1)
    index.add("other", "elsewhere", unit(1, 0), later)
    found = index.nearest("p", unit(1, 0), threshold=0.9)
    assert found is not None and found.key == "close" and found.similarity > 0.99
    assert index.nearest("p", unit(0.5, 1), threshold=0.99) is None
    assert index.nearest("p", unit(1, 0), threshold=0.9, refuse=lambda terms: True) is None
    index.forget("close")
    assert index.nearest("p", unit(1, 0), threshold=0.9) is None


def test_a_large_partition_is_searched_through_its_index_and_the_tail(monkeypatch):
    monkeypatch.setattr(semantic, "ANN_MIN", 200)
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(600, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = SemanticIndex()
    later = time.time() + 60
    for i, vector in enumerate(vectors[:500]):
        index.add("p", f"q{i}", vector, later)
    jobs = index.ann_jobs()
    assert len(jobs) == 1 and index.ann_jobs() == []  # one build at a time
    index.install(jobs[0], semantic.build_ann(jobs[0]))
    for i, vector in enumerate(vectors[500:], start=500):  # stored after the build: the tail
        index.add("p", f"q{i}", vector, later)

    def near(i: int) -> np.ndarray:
        noisy = vectors[i] + rng.normal(size=32).astype(np.float32) * 0.05
        return noisy / np.linalg.norm(noisy)

    for i in range(0, 600, 7):  # from the index and from the tail alike
        found = index.nearest("p", near(i), threshold=0.9)
        assert found is not None and found.key == f"q{i}"
    # Every candidate is scored exactly: the threshold, expiry and refusals still hold.
    assert index.nearest("p", near(3), threshold=0.99999) is None
    index.forget("q3")
    assert index.nearest("p", vectors[3], threshold=0.9) is None
    assert index.nearest("p", vectors[10], threshold=0.9, refuse=lambda terms: True) is None
    # The tail grew past a tenth of the partition: a rebuild is due, over every vector.
    assert [len(job.serials) for job in index.ann_jobs()] == [600]


def test_a_label_the_index_still_holds_after_compaction_finds_nothing_else(monkeypatch):
    monkeypatch.setattr(semantic, "ANN_MIN", 20)
    rng = np.random.default_rng(8)
    vectors = rng.normal(size=(64, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = SemanticIndex()
    soon, later = time.time() + 0.2, time.time() + 60
    for i in range(32):  # the first half expires soon
        index.add("p", f"q{i}", vectors[i], soon if i < 16 else later)
    (job,) = index.ann_jobs()
    index.install(job, semantic.build_ann(job))
    time.sleep(0.3)
    for i in range(32, 64):  # fills the arrays: expired slots are compacted away
        index.add("p", f"q{i}", vectors[i], later)
    assert index.nearest("p", vectors[5], threshold=0.9) is None  # expired, compacted
    for i in (20, 40, 63):
        found = index.nearest("p", vectors[i], threshold=0.9)
        assert found is not None and found.key == f"q{i}"
