"""docs/api.md is the repository's own reference: it names every setting, every metric family
and every RESULT field the code has, nothing else; and no file sends the reader outside."""

from __future__ import annotations

import re
from pathlib import Path

from emailgate.access.gate import requests_family
from emailgate.config import Settings
from emailgate.metrics import Metrics
from emailgate.verify.pipeline import CheckResult
from emailgate.verify.result import Decision, Reason, Source, State, Verdict

ROOT = Path(__file__).resolve().parents[2]
API = (ROOT / "docs/api.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    """The text of `## title` up to the next `## ` heading."""
    start = API.index(f"\n## {title}\n")
    end = API.find("\n## ", start + 1)
    return API[start : end if end >= 0 else None]


def _first_cells(section: str) -> list[str]:
    """The backquoted names in the first cell of each table row."""
    names = []
    for line in section.splitlines():
        if line.startswith("| `"):
            names += re.findall(r"`([^`]+)`", line.split("|")[1])
    return names


def test_every_setting_is_documented_and_nothing_else() -> None:
    """The settings table lists exactly the variables Settings reads."""
    assert sorted(_first_cells(_section("Settings"))) == sorted(Settings.variables())


def test_every_metric_family_is_documented_and_nothing_else() -> None:
    """The metrics table lists exactly the families a running service registers."""
    metrics = Metrics()
    requests_family(metrics)  # registered by the access layer
    exported = {m.name for m in metrics.registry.collect()}
    documented = {name.removesuffix("_total") for name in _first_cells(_section("Metrics"))}
    assert documented == exported


def test_result_fields_are_documented_in_their_order() -> None:
    """The RESULT table names the fields of an answer, in the order the service sends them."""
    verdict = Verdict(State.UNKNOWN, Reason.UNKNOWN, 50, Source.LOCAL)
    result = CheckResult("a@b.c", "a", "b.c", verdict, Decision.ACCEPT, "signup", 30, False, 0.1)
    section = _section("RESULT").split("\n### ")[0]
    assert _first_cells(section) == list(result.to_dict())


def test_nothing_points_outside_the_repository() -> None:
    """No code or doc cites the specification beside the repository or internal notes."""
    outside = re.compile(r"CONTRACT\.md|DESIGN\.md|\.\./shared|\bissue \d+|the lead\b", re.I)
    files = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    files += [
        p for p in (ROOT / "service").rglob("*") if p.suffix in {".py", ".md", ".js", ".html"}
    ]
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in files
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line)
    ]
    assert not found, "\n".join(found)
