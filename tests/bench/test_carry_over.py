"""A bench run rewrites docs/benchmarks.md but keeps the marked sections other commands wrote."""

from __future__ import annotations

from pathlib import Path

from bench.__main__ import carry_over


def test_marked_sections_of_other_commands_are_kept_hyphenated_names_too(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(
        "# Old run\n\nold figures\n\n"
        "<!-- guardrails:start -->\nguardrail figures\n<!-- guardrails:end -->\n\n"
        "<!-- cache-calibration:start -->\ncalibration table\n<!-- cache-calibration:end -->\n\n"
        "<!-- litellm:start -->\nold side by side\n<!-- litellm:end -->\n"
    )
    new = "# New run\n\nnew figures\n\n<!-- litellm:start -->\nnew side by side\n<!-- litellm:end -->\n"

    written = carry_over(new, page)

    assert "new figures" in written and "old figures" not in written
    assert "guardrail figures" in written and "calibration table" in written
    assert "new side by side" in written and "old side by side" not in written
