"""The interpreter tuned for answer times once `emailgate serve` has started.

Three CPython defaults cost a signup tens of milliseconds while a batch job runs in the same
process (measured with `python -m benchmarks.batch --worker inline`, docs/batch.md):

- The cyclic garbage collector's full collections walk every tracked object. About 90,000
  are made at start-up (domain lists, the libraries' tables, the app) and live as long as the
  process; each full collection walked them again, 40 ms of the 50-70 ms pauses seen.
  `gc.freeze()` after start-up moves them out of its sight (the documented use: objects that
  live for ever). Objects made later are collected as before.
- Young objects are collected every 700 allocations by default, so a job's short-lived work
  (a chunk of rows, a group of provider answers) outlives several collections, is promoted,
  and soon makes the old generation "grown by a quarter": a full collection, 120-140 ms once
  a 100,000-row job had filled the verdict cache, every 6-7 s. Collecting the young every
  `YOUNG_THRESHOLD` allocations lets that work die by reference counting first: one full
  collection in the whole job, young collections a few milliseconds each.
- A thread holding the GIL (an upload read in a thread, aiosqlite's connection thread) keeps
  it for up to `sys.getswitchinterval()` (5 ms) each time the event loop wants it back, and
  a check wants it back several times. At 0.5 ms the loop waits a tenth as long, for a small
  cost to those threads' throughput.
"""

from __future__ import annotations

import gc
import logging
import sys

log = logging.getLogger("emailgate.http")

SWITCH_INTERVAL_S = 0.0005
YOUNG_THRESHOLD = 20_000  # allocations between young collections (CPython's default: 700)


def tune() -> None:
    """Freeze what start-up made, collect the young less often and shorten the GIL's switch
    interval; say so in the log."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    log.info(
        "interpreter tuned for answer times",
        extra={"event": "interpreter_tuned", "frozen_objects": gc.get_freeze_count(),
               "gc_threshold": list(gc.get_threshold()),
               "switch_interval_s": sys.getswitchinterval()},
    )  # fmt: skip
