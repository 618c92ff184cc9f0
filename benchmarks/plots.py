"""PNG plots of a run's figures with matplotlib (Agg: no display needed)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

COLORS = {
    "bare": "#7f7f7f",
    "bare-uvloop": "#2f2f2f",
    "hit": "#1f77b4",
    "hit-quiet": "#17becf",
    "cold": "#ff7f0e",
}
LABELS = {
    "bare": "bare aiohttp handler",
    "bare-uvloop": "bare aiohttp handler on uvloop",
    "hit": "emailgate, cache hit",
    "hit-quiet": "emailgate, cache hit, log level warning",
    "cold": "emailgate, cold local path",
}
PERCENTILE_TICKS = (0, 90, 99, 99.9, 99.99)


def _x(p: float) -> float:
    """Percentile to a log 'nines' axis: 0 → 1, 90 → 10, 99 → 100 ..."""
    return 1 / max(1e-6, 1 - p / 100)


def _nines_axis(ax: Axes) -> None:
    ax.set_xscale("log")
    ax.set_xticks([_x(p) for p in PERCENTILE_TICKS])
    ax.set_xticklabels([f"{p:g}%" for p in PERCENTILE_TICKS])
    ax.set_xlabel("percentile")
    ax.grid(True, which="major", alpha=0.3)


def latency(results: dict[str, Any], path: Path) -> Path | None:
    """Latency distributions: wrk targets, and overload answer times against the deadline."""
    http = results.get("http", {}).get("targets", {})
    over = results.get("overload", {})
    panels = int(bool(http)) + int(bool(over.get("one")))
    if not panels:
        return None
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.5), squeeze=False)
    col = 0
    if http:
        ax = axes[0][col]
        col += 1
        for target, s in http.items():
            xs = [_x(p) for p, _ in s["curve"] if p < 100]
            ys = [us / 1000 for p, us in s["curve"] if p < 100]
            ax.plot(xs, ys, label=LABELS.get(target, target), color=COLORS.get(target))
        _nines_axis(ax)
        ax.set_yscale("log")
        ax.set_ylabel("latency (ms, log)")
        ax.set_title(f"wrk, {results['http']['wrk']} (median run)")
        ax.legend(fontsize=8)
    if over.get("one"):
        ax = axes[0][col]
        for key, label in (("one", "one replica"), ("two", "two replicas on Redis")):
            run = over.get(key)
            if run and run.get("curve_ms"):
                ax.plot([_x(p) for p, _ in run["curve_ms"]], [ms for _, ms in run["curve_ms"]],
                        label=label)  # fmt: skip
        ax.axhline(over["one"]["deadline_ms"], color="red", linestyle="--", label="deadline")
        _nines_axis(ax)
        ax.set_ylabel("answer time (ms)")
        ax.set_title(f"overload: {over['factor']:g}x the provider rate ({over['rate']})")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def throughput(results: dict[str, Any], path: Path) -> Path | None:
    """Median requests per second per target (bars), min–max of the rounds (whiskers)."""
    http = results.get("http", {}).get("targets", {})
    if not http:
        return None
    names = list(http)
    medians = [http[n]["rps_median"] for n in names]
    low = [m - min(http[n]["rps_all"]) for n, m in zip(names, medians, strict=True)]
    high = [max(http[n]["rps_all"]) - m for n, m in zip(names, medians, strict=True)]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bars = ax.bar(
        [LABELS.get(n, n).replace(", ", ",\n") for n in names],
        medians,
        yerr=[low, high],
        color=[COLORS.get(n, "#999999") for n in names],
        capsize=4,
    )
    for bar, n in zip(bars, names, strict=True):
        r = http[n].get("ratio_to_bare")
        text = f"{http[n]['rps_median']:,.0f}/s" + (f"\n{r:.2f}x bare" if r else "")
        top = max(http[n]["rps_all"])  # above the whisker
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, top),
                    ha="center", va="bottom", fontsize=8, xytext=(0, 3),
                    textcoords="offset points")  # fmt: skip
    ax.set_ylabel("requests per second (median of rounds)")
    ax.set_title(f"throughput, {results['http']['wrk']}")
    ax.margins(y=0.2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _trailing(
    times: Sequence[float], window: float, step: float = 0.1
) -> tuple[list[float], list[int]]:
    """Calls in the trailing window [t - window, t) sampled every `step` seconds."""
    if not times:
        return [], []
    ordered = sorted(times)
    xs, ys = [], []
    t = 0.0
    end = ordered[-1] + step
    while t <= end:
        xs.append(t)
        ys.append(bisect.bisect_left(ordered, t) - bisect.bisect_left(ordered, t - window))
        t += step
    return xs, ys


def provider_calls(results: dict[str, Any], path: Path) -> Path | None:
    """Provider calls over time in the overload runs, with the limits drawn in."""
    over = results.get("overload", {})
    runs = [(k, over[k]) for k in ("one", "two") if over.get(k)]
    if not runs:
        return None
    fig, axes = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    first = runs[0][1]
    window, limit = first["lc_window_s"], first["lc_limit"]
    for key, run in runs:
        label = "one replica" if key == "one" else "two replicas on Redis"
        xs, ys = _trailing(run["lc_times"], window)
        axes[0].step(xs, ys, where="post", label=label)
        gaps = [b - a for a, b in zip(run["cml_times"], run["cml_times"][1:], strict=False)]
        axes[1].plot(run["cml_times"][1:], [g * 1000 for g in gaps], ".", markersize=3,
                     label=label)  # fmt: skip
    axes[0].axhline(limit, color="red", linestyle="--", label=f"limit {limit} per {window:g}s")
    axes[0].set_ylabel(f"ListCleanser calls\nin the last {window:g}s")
    axes[0].legend(fontsize=8, loc="lower right")
    axes[0].set_title("provider calls over time (overload)")
    interval_ms = first["cml_interval_s"] * 1000
    axes[1].axhline(interval_ms, color="red", linestyle="--", label=f"interval {interval_ms:g} ms")
    axes[1].set_ylabel("CleanMyList gap to\nthe previous call (ms)")
    axes[1].set_xlabel("seconds since the first request")
    axes[1].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def trace(results: dict[str, Any], path: Path) -> Path | None:
    """Provider calls of the signup trace against the lower bound and a call per check."""
    t = results.get("trace")
    if not t:
        return None
    labels = ["a provider call\nper check", "emailgate\n(provider calls)", "lower bound"]
    values = [t["credits_naive"], t["calls_total"], t["lower_bound"]]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    bars = ax.bar(labels, values, color=["#7f7f7f", "#1f77b4", "#2ca02c"])
    for bar, v in zip(bars, values, strict=True):
        ax.annotate(f"{v:,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", xytext=(0, 3),
                    textcoords="offset points")  # fmt: skip
    ax.set_ylabel("provider calls (credits)")
    ax.set_title(f"signup trace: {t['events']:,} checks, seed {t['seed']}")
    ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def memory(results: dict[str, Any], path: Path) -> Path | None:
    """Resident size while unique addresses flood the cache, with the bound marked."""
    m = results.get("memory")
    if not m:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.2))
    xs = [n for n, _ in m["samples"]]
    ax.plot(xs, [r / 2**20 for _, r in m["samples"]], marker=".", label="resident size")
    ax.axvline(m["bound"], color="red", linestyle="--",
               label=f"EMAILGATE_CACHE_MAX_ENTRIES={m['bound']:,}")  # fmt: skip
    ax.set_xlabel("unique addresses stored")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title("memory under a flood of unique addresses (in-process cache)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def all_plots(results: dict[str, Any], folder: Path) -> dict[str, Path]:
    """Every plot the results allow, written into `folder`; name → path."""
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    for name, fn in (
        ("latency", latency), ("throughput", throughput), ("provider_calls", provider_calls),
        ("trace", trace), ("memory", memory),
    ):  # fmt: skip
        out = fn(results, folder / f"{name}.png")
        if out is not None:
            made[name] = out
    return made
