"""The benchmark report marks every figure that has a target as met or missed, and says in one
plain sentence what capacity to expect: figures built here, no benchmark run needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import report

REPO = Path(__file__).resolve().parents[2]


def results(*, hit_ratio: float, growth: float, p999: float) -> dict[str, Any]:
    """A run's figures with the given cache-hit ratio, memory growth and p99.9/deadline."""

    def target(rps: float) -> dict[str, Any]:
        return {
            "rps_median": rps,
            "ratio_to_bare": rps / 20_000,
            "p50_us": 1000.0,
            "p99_us": 2000.0,
        }

    overload = {
        "lc_window_s": 6,
        "lc_max_in_window": 19,
        "lc_limit": 20,
        "cml_min_gap_s": 0.31,
        "cml_interval_s": 0.3,
        "lc_share": 0.96,
        "cml_share": 0.95,
        "p99_ms": 1400,
        "p999_ms": 1500 * p999,
        "deadline_ms": 1500,
        "p99_vs_deadline": 0.93,
        "p999_vs_deadline": p999,
    }
    return {
        "machine": {"cpu": "Test CPU", "cores": 4},
        "http": {
            "targets": {
                "bare": target(20_000),
                "hit": target(20_000 * hit_ratio),
                "cold": target(3_456),
            }
        },
        "trace": {
            "calls_total": 100,
            "lower_bound": 100,
            "ratio": 1.0,
            "credits_spent": 100,
            "credits_naive": 300,
            "credits_saved_share": 0.67,
        },
        "overload": {"one": overload},
        "memory": {
            "entries": 1000,
            "bound": 100,
            "held": 100,
            "rss_baseline": 0,
            "rss_final": 2**20 * growth,
            "rss_at_bound": 2**20,
            "growth_ratio": growth,
        },
    }


def test_every_row_with_a_target_is_marked() -> None:
    """A row with a target says met or missed; a row without one says neither."""
    for row in report.summary_rows(results(hit_ratio=0.95, growth=1.0, p999=0.97)):
        has_target = row[5] not in ("–", "(diagnostic)")
        assert (row[6] in (report.MET, report.MISSED)) == has_target, row


def test_a_missed_target_is_marked_missed_and_named_up_front() -> None:
    """Cache hits at 0.30 of bare, memory growing 1.37x, a p99.9 over the deadline: each row
    says missed, and the line above the table names them; the others say met."""
    res = results(hit_ratio=0.30, growth=1.37, p999=1.02)
    marks = {row[1]: row[6] for row in report.summary_rows(res)}
    assert marks["cache-hit throughput"] == report.MISSED
    assert marks["cache-hit throughput, longer-term goal"] == report.MISSED
    assert marks["RSS growth after 1,000 unique addresses"] == report.MISSED
    assert marks["answer time p99 / p99.9 (one replica)"] == report.MISSED
    assert marks["cache entries held"] == report.MET
    assert marks["provider calls on the signup trace"] == report.MET
    line = report.targets_line(report.summary_rows(res))
    assert line.startswith("**Targets.** 5 met, 4 missed (1: cache-hit throughput;")
    rows = report.summary_rows(results(hit_ratio=0.95, growth=1.0, p999=0.97))
    assert report.targets_line(rows) == "**Targets.** 9 met, 0 missed."


def test_the_hit_target_and_the_longer_term_goal_are_marked_apart() -> None:
    """At 0.70 of the faster bare app the 0.60 target is met and the 0.90 goal missed."""
    res = results(hit_ratio=0.70, growth=1.0, p999=0.97)
    marks = {row[1]: row[6] for row in report.summary_rows(res)}
    assert marks["cache-hit throughput"] == report.MET
    assert marks["cache-hit throughput, longer-term goal"] == report.MISSED


def test_capacity_is_one_plain_sentence() -> None:
    """ "One replica answers about N cache hits per second on this machine", N rounded."""
    sentence = report.capacity(results(hit_ratio=0.4, growth=1.0, p999=0.9))
    assert sentence is not None
    assert sentence.startswith(
        "One replica answers about 8,000 cache hits per second on this machine (Test CPU, 4 cores)"
    )
    assert "about 3,500 first-time checks per second" in sentence
    assert sentence.count(".") == 1 and sentence.endswith(".")


def test_the_latest_report_in_the_repository_is_marked() -> None:
    """The newest `python -m benchmarks` report under benchmarks/results carries the capacity
    sentence and a mark on every row that has a target (written again by this renderer)."""
    dated = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9].json"
    runs = REPO.glob(f"benchmarks/results/{dated}")
    latest = max(runs, key=lambda p: p.stem)  # `python -m benchmarks` runs, named by date
    text = latest.with_suffix(".md").read_text()
    assert "**Capacity.** One replica answers about" in text
    data = json.loads(latest.read_text())
    data.pop("sizes"), data.pop("command")
    for row in report.summary_rows(data):
        line = "| " + " | ".join(str(c) for c in row) + " |"
        assert line in text, line
