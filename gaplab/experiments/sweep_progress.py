"""A progress line for sweeps on standard error: done, failed and remaining tasks.

On a terminal the line is redrawn in place, through tqdm when it is installed. Elsewhere, as in a
log file or CI, one line is printed at most every ``interval`` seconds and once at the end.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO


class Progress:
    """Counts finished tasks and reports them.

    Parameters
    ----------
    total
        Tasks this run will execute (finished tasks that are skipped are not counted).
    skipped
        Tasks already finished in the output folder, shown once at the start.
    stream
        Where to write; standard error by default.
    interval
        Seconds between two lines when ``stream`` is not a terminal.
    """

    def __init__(
        self, total: int, skipped: int = 0, stream: TextIO | None = None, interval: float = 5.0
    ) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._started = time.monotonic()
        self._printed_at = -math.inf  # the first update always prints
        self._terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: Any = None
        if skipped:
            self.stream.write(f"sweep: {skipped} tasks already finished, skipped\n")
        if self._terminal:
            try:
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self._bar = tqdm(total=total, file=self.stream, unit="task", desc="sweep")

    @property
    def remaining(self) -> int:
        return self.total - self.done - self.failed

    def update(self, row: dict[str, Any]) -> None:
        """Count one finished row (``state`` ``ok`` or ``error``)."""
        if row.get("state") == "error":
            self.failed += 1
        else:
            self.done += 1
        if self._bar is not None:
            self._bar.set_postfix(failed=self.failed, remaining=self.remaining, refresh=False)
            self._bar.update(1)
            return
        now = time.monotonic()
        if self._terminal:
            self.stream.write("\r" + self.line())
            self.stream.flush()
        elif now - self._printed_at >= self.interval or self.remaining == 0:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._printed_at = now

    def line(self) -> str:
        """Format the current counts as one line of text."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = (self.done + self.failed) / elapsed
        return (
            f"sweep: {self.done} done, {self.failed} failed, {self.remaining} remaining "
            f"of {self.total} ({rate:.1f} tasks/s)"
        )

    def close(self) -> None:
        """Finish the line; prints the final counts unless they were just printed."""
        if self._bar is not None:
            self._bar.close()
        elif self._terminal:
            self.stream.write("\n")
        elif self.remaining != 0 or self.total == 0:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
