"""README.md's "Driving the adapter from Python" example runs as written: the docs match the
code (the example asserts its own outcomes: the top-up answered I0 and split between credit
and debt, and an hour of consumption lowered the balance)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    section = text[start:]
    next_heading = re.search(r"\n## ", section[len(heading) + 2:])
    if next_heading is not None:
        section = section[:len(heading) + 2 + next_heading.start()]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, f"no python block under {heading}"
    return match.group(1)


def test_the_driving_from_python_example_runs_and_prints_the_balances(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = _python_block_after("## Driving the adapter from Python")
    exec(compile(code, f"{README}:Driving the adapter from Python", "exec"), {})
    assert re.fullmatch(r"balance (\d+) p after the top-up, (\d+) p an hour later\n",
                        capsys.readouterr().out)


def test_the_block_finder_fails_for_a_heading_with_no_example() -> None:
    with pytest.raises(ValueError):
        _python_block_after("## No such section")
