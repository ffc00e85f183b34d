from routing.core.stream_tap import StreamTap


def test_the_tap_reassembles_content_tool_calls_and_usage():
    tap = StreamTap()
    tap.feed(
        {
            "id": "c1",
            "model": "m-1",
            "created": 5,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}],
        }
    )
    tap.feed({"id": "c1", "choices": [{"index": 0, "delta": {"content": "lo"}}]})
    tap.feed(
        {
            "id": "c1",
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "lookup", "arguments": ""},
                            }
                        ]
                    },
                }
            ],
        }
    )
    tap.feed(
        {
            "id": "c1",
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a": '}}]},
                }
            ],
        }
    )
    tap.feed(
        {
            "id": "c1",
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]},
                    "finish_reason": "tool_calls",
                }
            ],
        }
    )
    tap.feed(
        {
            "id": "c1",
            "choices": [],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        }
    )

    response = tap.assembled_response()
    message = response["choices"][0]["message"]
    assert message["content"] == "Hello"
    assert message["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup", "arguments": '{"a": 1}'},
        }
    ]
    assert response["choices"][0]["finish_reason"] == "tool_calls"
    assert response["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert response["model"] == "m-1"


def test_other_choices_are_passed_through_but_not_recorded():
    tap = StreamTap()
    tap.feed(
        {
            "choices": [
                {"index": 1, "delta": {"content": "second"}},
                {"index": 0, "delta": {"content": "first"}},
            ]
        }
    )
    assert tap.assembled_response()["choices"][0]["message"]["content"] == "first"
