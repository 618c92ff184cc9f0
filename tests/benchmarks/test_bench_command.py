"""The benchmark command as `make bench` runs it, on tiny sizes: every scenario, a whole report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.report import SECTIONS

REPO = Path(__file__).resolve().parents[2]
# The quickest mode, made smaller still: seconds per scenario, not minutes.
TINY = [
    "--quick", "--no-profile", "--quiet", "--name", "tiny",
    "--rounds", "1", "--seconds", "1", "--local-addresses", "300", "--trace-events", "120",
    "--overload-rate", "10/2s", "--overload-windows", "2",
    "--memory-entries", "20000", "--memory-bound", "2000",
]  # fmt: skip
PLOTS = ("latency", "throughput", "provider_calls", "trace", "memory")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run `python -m benchmarks` once on tiny sizes; the folder it wrote into."""
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", *TINY, "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"benchmark failed:\n{proc.stdout}\n{proc.stderr}"
    return out


@pytest.mark.slow
def test_report_has_every_section_measured(tiny_run: Path) -> None:
    """The report has every section, and none of them says it was not measured."""
    text = (tiny_run / "tiny.md").read_text()
    for heading in SECTIONS:
        assert heading in text, heading
    assert "_Not measured" not in text
    assert "python -m benchmarks --quick" in text  # the command that made it


@pytest.mark.slow
def test_summary_has_a_ratio_for_every_scenario(tiny_run: Path) -> None:
    """The summary table carries rows for scenarios 1 to 5, each with a ratio."""
    summary = (tiny_run / "tiny.md").read_text().split("## 1.")[0]
    rows = [line.split("|") for line in summary.splitlines() if line.startswith("| ")]
    scenarios = {cells[1].strip() for cells in rows[1:]}
    assert scenarios >= {"1", "2", "3", "4", "5"}
    for cells in rows[1:]:
        assert cells[5].strip() not in ("", "–"), cells


@pytest.mark.slow
def test_figures_are_saved_as_json(tiny_run: Path) -> None:
    """The JSON beside the report holds each scenario's figures, with plausible values."""
    data = json.loads((tiny_run / "tiny.json").read_text())
    assert data["http"]["targets"]["bare"]["rps_median"] > 0
    assert data["http"]["targets"]["hit"]["errors"] == 0
    assert data["http"]["localcost"]["local"]["total_us"] > 0
    assert data["trace"]["lower_bound"] > 0
    assert data["trace"]["calls_total"] >= data["trace"]["lower_bound"]
    assert data["overload"]["two"]["lc_max_in_window"] <= data["overload"]["two"]["lc_limit"]
    assert data["memory"]["held"] == data["memory"]["bound"] == 2000


@pytest.mark.slow
def test_plots_are_png_files(tiny_run: Path) -> None:
    """Every plot is written as a PNG and linked from the report."""
    text = (tiny_run / "tiny.md").read_text()
    for name in PLOTS:
        png = tiny_run / "tiny" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"](tiny/{name}.png)" in text


@pytest.mark.slow
def test_summary_marks_targets_and_states_capacity(tiny_run: Path) -> None:
    """A real run's summary opens with the capacity sentence and the targets count, and every
    row with a target and a measured ratio ends in met or missed."""
    summary = (tiny_run / "tiny.md").read_text().split("## 1.")[0]
    assert "**Capacity.** One replica answers about " in summary
    assert "cache hits per second on this machine" in summary
    assert "**Targets.** " in summary
    rows = [line.split("|") for line in summary.splitlines() if line.startswith("| ")]
    assert rows[0][7].strip() == "met?"
    for cells in rows[1:]:
        ratio, target, mark = cells[5].strip(), cells[6].strip(), cells[7].strip()
        if target in ("–", "(diagnostic)") or ratio == "–":
            assert mark == "–", cells
        else:
            assert mark in ("met", "**missed**"), cells
