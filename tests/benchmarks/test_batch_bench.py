"""`python -m benchmarks.batch` on a tiny list: it runs end to end and reports every figure,
with the provider calls equal to their lower bound."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_batch_benchmark_reports_its_figures(tmp_path: Path) -> None:
    """A 400-row run writes the report and JSON; the job paid exactly the lower bound; the
    bulk way's section has a row per provider."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.batch", "--rows", "400", "--baseline-s", "2",
         "--bulk-rows", "300", "--bulk-quick", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    [report] = tmp_path.glob("batch-*.md")
    text = report.read_text()
    for words in ("wall (upload → download)", "peak RSS", "provider calls / lower bound",
                  "signup p99", "The bulk way: the whole job"):  # fmt: skip
        assert words in text
    for provider in ("listcleanser", "listcleaner", "emailconsul"):
        assert f"| {provider} |" in text
    [result] = json.loads(next(tmp_path.glob("batch-*.json")).read_text())
    assert result["rows"] == 400 and result["calls_ratio"] == 1.0
    assert result["lower_bound"] == 200 and result["signups_during"] > 0
    assert result["peak_rss_mb"] >= result["rss_before_mb"] > 0
