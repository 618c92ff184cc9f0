"""Progress on stderr while the benchmarks run: elapsed time, scenario, step."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Prints `[mm:ss] scenario: step` lines; `quiet` keeps only warnings."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.start = time.monotonic()
        self.scenario = ""

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.start

    def _stamp(self) -> str:
        m, s = divmod(int(self.elapsed()), 60)
        return f"[{m:02d}:{s:02d}]"

    def begin(self, scenario: str, what: str) -> None:
        """A scenario starts."""
        self.scenario = scenario
        self.say(f"== {what}")

    def say(self, message: str) -> None:
        """One step."""
        if not self.quiet:
            prefix = f"{self.scenario}: " if self.scenario else ""
            print(f"{self._stamp()} {prefix}{message}", file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        """Something the reader must see."""
        print(f"{self._stamp()} WARNING {message}", file=self.stream, flush=True)
