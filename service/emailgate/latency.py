"""The interpreter tuned for answer times once `emailgate serve` has started.

Two CPython defaults cost a signup tens of milliseconds while a batch job runs in the same
process (measured with `python -m benchmarks.batch --worker inline`, docs/batch.md):

- The cyclic garbage collector's full collections walk every tracked object. About 90,000
  are made at start-up (domain lists, the libraries' tables, the app) and live as long as the
  process; each full collection walked them again, 40 ms of the 50-70 ms pauses seen.
  `gc.freeze()` after start-up moves them out of its sight (the documented use: objects that
  live for ever). Objects made later are collected as before.
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


def tune() -> None:
    """Freeze what start-up made and shorten the GIL's switch interval; say so in the log."""
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    log.info(
        "interpreter tuned for answer times",
        extra={"event": "interpreter_tuned", "frozen_objects": gc.get_freeze_count(),
               "switch_interval_s": sys.getswitchinterval()},
    )  # fmt: skip
