"""The progress line of put and get on stderr: bar, bytes, rate, time left, and where a
resumed transfer started."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Self, TextIO

# The progress line is redrawn at most this often.
PROGRESS_INTERVAL_SECONDS = 0.1


def format_size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """One redrawn line (bar, bytes, percentage, rate, time left) when the stream is a
    terminal; otherwise a single plain line at the end. `done` bytes were there before
    this run (a resumed transfer): they fill the bar but count for no rate, and the line
    says where the transfer resumed."""

    def __init__(self, verb: str, total: int | None, stream: TextIO, *, done: int = 0) -> None:
        self._verb, self._total, self._stream = verb, total, stream
        self._live = stream.isatty()
        self.done = done
        self._start = done  # where this run began
        self.moved = 0  # bytes moved by this run, those sent again after a cut included
        self.resumed: int | None = done or None
        self._started = self._drawn_at = time.monotonic()
        self._drawn = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if error is not None:
            self._end_line()  # the error message gets a line of its own

    def advance(self, count: int) -> None:
        self.done += count
        self.moved += count
        now = time.monotonic()
        if self._live and now - self._drawn_at >= PROGRESS_INTERVAL_SECONDS:
            self._drawn_at = now
            self._draw(now, final=False)

    def resume_at(self, offset: int) -> None:
        """The far end holds the first `offset` bytes: go on from there (back, when bytes
        sent before a cut were lost), and say so."""
        self.done = offset
        self.resumed = offset or None
        if not self.moved:
            self._start = offset

    def note(self, text: str) -> None:
        """A message on a line of its own; the bar is drawn again below it."""
        self._end_line()
        self._stream.write(text + "\n")
        self._stream.flush()

    def finish(self) -> None:
        now = time.monotonic()
        if self._live:
            self._draw(now, final=True)
            self._stream.write("\n")
            self._drawn = False
        else:
            elapsed = now - self._started
            rate = format_size(self.moved / max(elapsed, 1e-6))
            net = self.done - self._start
            line = f"{self._verb} {net} bytes in {elapsed:.1f} s ({rate}/s)"
            if self.moved > net:
                line += f", {self.moved - net} sent again after cuts"
            if self.resumed:
                line += f", resumed at {format_size(self.resumed)}"
            self._stream.write(line + "\n")
        self._stream.flush()

    def _end_line(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False

    def _draw(self, now: float, *, final: bool) -> None:
        elapsed = max(now - self._started, 1e-6)
        rate = self.moved / elapsed
        fields = [self._verb]
        if self._total is None:
            fields.append(format_size(self.done))
        else:
            share = 1.0 if self._total == 0 else min(self.done / self._total, 1.0)
            bar = "#" * int(share * 20)
            fields += [
                f"[{bar:-<20}]",
                f"{format_size(self.done)} / {format_size(self._total)}",
                f"{share:4.0%}",
            ]
        if self.resumed:
            fields.append(f"resumed at {format_size(self.resumed)}")
        fields.append(f"{format_size(rate)}/s")
        if final:
            fields.append(f"in {clock(elapsed)}")
        elif self._total is not None and rate > 0:
            fields.append(f"{clock((self._total - self.done) / rate)} left")
        # \r returns to the start of the line, ESC [K clears what a longer line left.
        self._stream.write("\r" + "  ".join(fields) + "\x1b[K")
        self._stream.flush()
        self._drawn = True
