"""`python -m benchmarks [SCENARIO ...] [--quick] [--out DIR]`: run, report, plot.

Scenarios: hit (1: cache hit against a bare aiohttp handler, with a py-spy profile), cold (2:
cold local path, and the local checks' cost in-process), trace (3), overload (4), memory (5).
None named: all of them. Everything runs on loopback: `emailgate serve` processes, the bare
handler, a DNS server, the fake providers and a private redis-server, all stopped at the end.
Writes DIR/<name>.md, DIR/<name>.json (every figure) and DIR/<name>/*.png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import machine, plots, report
from benchmarks.context import Bench
from benchmarks.progress import Progress
from benchmarks.scenarios import http, memory, overload, trace
from benchmarks.sizes import FULL, QUICK, Sizes

SCENARIOS = ("hit", "cold", "trace", "overload", "memory")
RESULTS = Path(__file__).with_name("results")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                   help=f"any of {', '.join(SCENARIOS)} (default: all)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="short runs, small sizes (about 2 min)")
    p.add_argument("--out", type=Path, default=RESULTS, help="report folder (%(default)s)")
    p.add_argument("--name", help="report name (default: the date, -quick or the scenarios)")
    p.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    p.add_argument("--keep-workdir", action="store_true", help="keep the processes' logs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    sizes = p.add_argument_group("sizes (override --quick or the full defaults)")
    sizes.add_argument("--rounds", type=int)
    sizes.add_argument("--seconds", type=float, help="length of one wrk run")
    sizes.add_argument("--connections", type=int)
    sizes.add_argument("--profile-seconds", type=float)
    sizes.add_argument("--local-addresses", type=int)
    sizes.add_argument("--trace-events", type=int)
    sizes.add_argument("--overload-rate", help="EMAILGATE_LISTCLEANSER_RATE, e.g. 20/6s")
    sizes.add_argument("--overload-windows", type=int)
    sizes.add_argument("--provider-latency-ms", type=float)
    sizes.add_argument("--memory-entries", type=int)
    sizes.add_argument("--memory-bound", type=int)
    sizes.add_argument("--seed", type=int)
    args = p.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    return args


def choose_sizes(args: argparse.Namespace) -> Sizes:
    """The full or quick sizes with the command line's overrides."""
    base = QUICK if args.quick else FULL
    return base.with_overrides(vars(args))


async def run_all(bench: Bench, selected: list[str]) -> dict[str, Any]:
    """Run the selected scenarios in order; their figures by scenario."""
    results: dict[str, Any] = {}
    if "hit" in selected or "cold" in selected:
        names = " and ".join(s for s in ("hit", "cold") if s in selected)
        bench.progress.begin("http", f"scenario 1/2 ({names}) over HTTP with wrk")
        results["http"] = await http.run(bench, hit="hit" in selected, cold="cold" in selected)
    if "trace" in selected:
        bench.progress.begin("trace", "scenario 3: seeded signup trace")
        results["trace"] = await trace.run(bench)
    if "overload" in selected:
        bench.progress.begin("overload", "scenario 4: overload at 10x the provider rate")
        results["overload"] = await overload.run(bench)
    if "memory" in selected:
        bench.progress.begin("memory", "scenario 5: memory under a flood of unique addresses")
        results["memory"] = await memory.run(bench)
    return results


def report_name(args: argparse.Namespace, selected: list[str], date: str) -> str:
    """`<date>`, `<date>-quick`, or `<date>-<scenarios>` for a partial run."""
    if args.name:
        return str(args.name)
    name = date
    if args.quick:
        name += "-quick"
    if set(selected) != set(SCENARIOS):
        name += "-" + "-".join(selected)
    return name


async def run_scenarios(
    workdir: Path, sizes: Sizes, progress: Progress, selected: list[str], *, profile: bool
) -> dict[str, Any]:
    """Run the scenarios; every process they started is stopped before this returns."""
    async with contextlib.AsyncExitStack() as stack:
        return await run_all(Bench(workdir, sizes, progress, stack, profile=profile), selected)


def write(
    results: dict[str, Any], *, out: Path, name: str, sizes: Sizes, command: str, date: str,
    progress: Progress,
) -> Path:  # fmt: skip
    """The report, the JSON and the plots; the report's path."""
    progress.begin("report", "writing the report and plots")
    made = plots.all_plots(results, out / name)
    report_path = out / f"{name}.md"
    text = report.render(results, sizes=sizes, command=command, date=date, plots=made,
                         report_path=report_path, elapsed=progress.elapsed())  # fmt: skip
    report_path.write_text(text)
    (out / f"{name}.json").write_text(
        json.dumps({"sizes": vars(sizes), "command": command, **results}, indent=1, default=str)
    )
    progress.say(f"report: {report_path}")
    for row in report.summary_rows(results):
        progress.say(f"  [{row[0]}] {row[1]}: {row[2]} vs {row[3]} -> {row[4]} "
                     f"(target {row[5]}: {row[6].strip('*')})")  # fmt: skip
    sentence = report.capacity(results)
    if sentence is not None:
        progress.say(sentence)
    return report_path


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m benchmarks`: run, then write the report, JSON and plots."""
    given = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(given)
    selected = [s for s in SCENARIOS if s in args.scenarios] or list(SCENARIOS)
    sizes = choose_sizes(args)
    progress = Progress(quiet=args.quiet)
    date = datetime.date.today().isoformat()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="emailgate-bench-"))
    progress.say(f"scenarios: {', '.join(selected)}; work directory {workdir}")
    results: dict[str, Any] = {"machine": machine.describe()}
    try:
        results.update(
            asyncio.run(
                run_scenarios(workdir, sizes, progress, selected, profile=not args.no_profile)
            )
        )
    finally:
        if args.keep_workdir:
            progress.say(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["machine"]["load_after"] = machine.loadavg()
    command = " ".join(["python -m benchmarks", *(shlex.quote(a) for a in given)])
    write(results, out=out, name=report_name(args, selected, date), sizes=sizes,
          command=command, date=date, progress=progress)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
