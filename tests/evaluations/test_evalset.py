"""Evaluation sets: a clean file runs, a broken one says where it is broken; scorers."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.evaluations.evalset import EvalSetError, load_eval_set
from routing.evaluations.scoring import contains, exact, regex

DEMO = Path(__file__).resolve().parents[2] / "config" / "evals" / "demo.jsonl"


def test_the_shipped_demo_set_loads() -> None:
    eval_set = load_eval_set(DEMO)

    assert eval_set.categories == ["classification", "extraction"]
    assert len(eval_set.items) == 10 and len(eval_set.sha256) == 64


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"category": "x", "prompt": "p"}', "line 2: 'expected' must be a non-empty string"),
        ('{"category": "Bad Name", "prompt": "p", "expected": "e"}', "line 2: 'category'"),
        ('{"category": "x", "prompt": "", "expected": "e"}', "line 2: 'prompt'"),
        ('{"category": "x", "prompt": "p", "expected": "e", "scorer": "bleu"}', "unknown scorer"),
        ('{"category": "x", "prompt": "p", "expected": "(", "scorer": "regex"}', "valid regex"),
        ('{"category": "x", "prompt": "p", "expected": "e", "answer": 1}', "unknown field(s)"),
        ("{not json", "line 2: not valid JSON"),
    ],
)
def test_a_broken_line_is_named_and_nothing_runs(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"category": "x", "prompt": "p", "expected": "e"}\n' + line + "\n")

    with pytest.raises(EvalSetError) as broken:
        load_eval_set(path)

    assert problem in str(broken.value)


def test_comments_and_blank_lines_are_skipped_and_messages_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        "# a comment\n\n"
        '{"category": "qa", "prompt": [{"role": "system", "content": "Be short."}, '
        '{"role": "user", "content": "Capital of France?"}], "expected": "Paris"}\n'
    )

    (item,) = load_eval_set(path).items

    assert item.line == 3 and item.messages[0]["role"] == "system" and item.scorer == "contains"


def test_scorers_ignore_case_spacing_and_surrounding_punctuation() -> None:
    assert exact("  Paris. ", "paris")
    assert not exact("Paris, France", "paris")
    assert contains("The answer is PARIS, France", "paris")
    assert not contains("Lyon", "paris")
    assert regex("total: EUR 42.10", r"42\.10")
    assert not regex("total: EUR 42,10", r"42\.10")
