"""A dependency-free progress bar for the command line (writes to stderr, never fails a run)."""
from __future__ import annotations

import sys
import time

from .output import SafeStream


class ProgressBar:
    """Render ``[#####.....]  45%  1,234,567 / 2,700,000 rows`` on stderr, at most 10 times/s.

    Without a known total only the row count is shown. On a non-terminal stderr a plain line is
    written at most once a second, so logs stay readable. A closed or full stderr silences the bar
    instead of failing the run.
    """

    def __init__(self, total: int | None = None, label: str = "rows", stream=None):
        self.total = total
        self.label = label
        self.stream = SafeStream(stream if stream is not None else sys.stderr)
        self.tty = self.stream.isatty()
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last < (0.1 if self.tty else 1.0):
            return
        self._last = now
        self._render(done)

    def _render(self, done: int) -> None:
        if self.total:
            frac = min(1.0, done / self.total)
            bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
            text = f"[{bar}] {100 * frac:5.1f}%  {done:,} / {self.total:,} {self.label}"
        else:
            text = f"{done:,} {self.label} read"
        self.stream.write(("\r" + text) if self.tty else text + "\n")
        self.stream.flush()
        self._shown = True

    def close(self, done: int) -> None:
        self._render(done)
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()
