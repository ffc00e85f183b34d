"""`make drills`: run every drill under tests/drills and print one table of what each proves.

drill · expectation (the first line of the drill's docstring) · observed (what its tests
recorded with `record_property("observed", ...)`, else their count) · pass/fail.
Extra arguments go to pytest. Exits with pytest's status.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DRILLS = ROOT / "tests" / "drills"
REPORT = ROOT / "var" / "drills.xml"


def expectation(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    first = doc.strip().split("\n\n")[0].replace("\n", " ")
    return first.removeprefix("Drill: ")


def results() -> dict[str, dict[str, list[str]]]:
    """Per drill module: the outcome of each test and what it observed."""
    found: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for case in ET.parse(REPORT).getroot().iter("testcase"):  # noqa: S314 - our own report
        module = case.get("classname", "").rsplit(".", 1)[-1]
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        found[module]["outcomes"].append("fail" if failed else "skip" if skipped else "pass")
        for prop in case.iter("property"):
            if prop.get("name") == "observed":
                found[module]["observed"].append(prop.get("value", ""))
    return found


def main(argv: list[str]) -> int:
    REPORT.parent.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "pytest", str(DRILLS), "-q", f"--junitxml={REPORT}", *argv]
    # The audit drill at its full scale here (the normal suite runs it smaller: its docstring).
    env = {**os.environ, "AUDIT_YEARS_ROWS": os.environ.get("AUDIT_YEARS_ROWS", "10000000")}
    status = subprocess.run(command, cwd=ROOT, check=False, env=env).returncode  # noqa: S603
    found = results()
    rows = ["| drill | expectation | observed | result |", "|---|---|---|---|"]
    for path in sorted(DRILLS.glob("test_*.py")):
        outcome = found.get(path.stem)
        if outcome is None:
            rows.append(f"| `{path.name}` | {expectation(path)} | not run | — |")
            continue
        outcomes = outcome["outcomes"]
        verdict = "**FAIL**" if "fail" in outcomes else "pass"
        observed = "; ".join(outcome["observed"]) or f"{outcomes.count('pass')} test(s) passed"
        rows.append(f"| `{path.name}` | {expectation(path)} | {observed} | {verdict} |")
    print("\n" + "\n".join(rows))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
