"""`python -m benchmarks.layers` on a few hundred requests: every stack is measured, the
whole app's answer is a real check, and the report says the target and whether it is met."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.layers import STACKS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_layers_benchmark_prices_every_layer(tmp_path: Path) -> None:
    """Each stack gets a positive CPU figure, the table a row per stack, and the summary the
    budget the target leaves with met or missed."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.layers", "--requests", "300", "--repeats", "1",
         "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (report,) = tmp_path.glob("layers-*.md")
    data = json.loads(report.with_suffix(".json").read_text())
    us = data["us_per_request"]
    assert list(us) == list(STACKS)
    assert all(0 < value < 10_000 for value in us.values()), us
    assert data["answer_bytes"] > 300  # the service's RESULT, sent by every stack
    text = report.read_text()
    for stack in STACKS:
        assert re.search(rf"^\| {re.escape(stack)} \| \d+\.\d \|", text, re.M), stack
    assert re.search(r"Measured: \d\.\d\d, \*\*(met|missed)\*\*", text)
