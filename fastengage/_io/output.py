"""Writing outputs so that nothing is lost: atomic file replacement and stderr that never fails.

* :func:`atomic_output` writes to a temporary file in the destination's folder, fsyncs it and
  renames it over the destination, then fsyncs the folder. A crash, a full disk, SIGINT or SIGTERM
  at any point leaves either the previous file or the new one, never a truncated one, and never
  deletes a previous good output. The temporary file is removed on failure.
* :func:`terminate_as_interrupt` makes SIGTERM unwind like Ctrl-C (so ``finally`` blocks and the
  clean-up above run) for the duration of a command.
* :func:`say` writes a line to stderr and never raises: a closed (``2>&-``) or full
  (``2>/dev/full``) stderr must not fail a run whose real output is a file.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile

__all__ = ["atomic_output", "terminate_as_interrupt", "say", "SafeStream"]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=folder)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        try:
            dir_fd = os.open(folder, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def terminate_as_interrupt():
    """Within the block, SIGTERM raises KeyboardInterrupt in the main thread (clean-up runs)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class SafeStream:
    """A text stream wrapper whose writes never raise; it goes silent after the first failure."""

    def __init__(self, stream):
        self._stream = stream
        self.broken = stream is None

    def write(self, text: str) -> int:
        if self.broken:
            return len(text)
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            self.broken = True
            return len(text)

    def flush(self) -> None:
        if self.broken:
            return
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self.broken = True

    def isatty(self) -> bool:
        if self.broken:
            return False
        try:
            return self._stream.isatty()
        except (OSError, ValueError, AttributeError):
            return False


def say(message: str) -> None:
    """One line on stderr, or nothing if stderr is closed or full."""
    stream = SafeStream(sys.stderr)
    stream.write(message + "\n")
    stream.flush()


def silence_broken_stderr() -> None:
    """Before exit: if stderr cannot be flushed, point it at devnull so the interpreter's own
    final flush does not turn a successful run into exit status 120."""
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.flush()
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            sys.stderr = open(os.devnull, "w")
