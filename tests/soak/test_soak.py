"""The short version of the fault campaign (benchmarks/soak.py, issue 12): every kind of fault
for a few seconds, as `python -m benchmarks.soak` runs it; no command lost, applied twice,
applied though reported failed, or hung, and every fault did bite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECONDS = os.environ.get("SECURE_EMU_SOAK_SECONDS", "2")


def _figure(output: str, pattern: str) -> int:
    match = re.search(pattern, output)
    assert match is not None, (pattern, output)
    return int(match.group(1))


def test_a_short_soak_loses_nothing_doubles_nothing_and_every_fault_bites() -> None:
    run = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--seconds", SECONDS,
                          "--seed", "7"], cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=False)
    output = run.stdout
    assert run.returncode == 0, output + run.stderr
    assert "lost 0, doubled 0, applied-but-failed 0, hung 0" in output
    assert _figure(output, r"kills (\d+)") >= 1
    bitten = output.split("by fault: ", 1)[1].splitlines()[0]
    counts = dict(re.findall(r"([\w-]+) (\d+)", bitten))
    assert int(counts["kill"]) >= 1 and int(counts["write-failure"]) >= 1, output
    assert re.search(r"memory \(server RSS, KiB, hostile round\): start \d+", output), output


def test_the_soak_exits_non_zero_on_a_loss() -> None:
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks.soak import Figures
    finally:
        sys.path.remove(str(REPO))
    figures = Figures()
    assert not figures.failed
    figures.lost = 1
    assert figures.failed
    figures.lost, figures.doubled = 0, 1
    assert figures.failed
