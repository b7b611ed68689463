"""stdout and stderr that may vanish: a closed terminal or pipe must not stop a command halfway.

When the terminal is closed, writing to it fails with EIO; when the reader of a
pipe is gone, with EPIPE. `hopshop up` still has processes to stop (or a stack to
finish starting) at that moment, so its output is wrapped: the first failed write
points the file descriptor at /dev/null and the command carries on unheard.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from typing import TextIO, cast


def silence(stream: TextIO) -> bool:
    """Point ``stream``'s file descriptor at /dev/null. False when it has none.

    Later writes, and the interpreter's flush at exit, then succeed instead of
    failing again (the way the Python docs handle a broken pipe).
    """
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return False
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
    return True


class _Outliving(io.TextIOBase):
    """Writes to ``stream`` until that fails once, then to /dev/null."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self._dropped = False

    def write(self, text: str) -> int:
        if not self._dropped:
            try:
                self._stream.write(text)
            except OSError:
                self._lose()
        return len(text)

    def flush(self) -> None:
        if not self._dropped:
            try:
                self._stream.flush()
            except OSError:
                self._lose()

    def isatty(self) -> bool:
        return not self._dropped and self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def _lose(self) -> None:
        # With the descriptor on /dev/null the buffered text drains harmlessly;
        # without one (a test's capture) the text is simply dropped.
        if silence(self._stream):
            with contextlib.suppress(OSError):
                self._stream.flush()
        else:
            self._dropped = True


@contextlib.contextmanager
def outliving_output() -> Iterator[None]:
    """While inside, a write to a closed terminal or pipe is dropped instead of raising."""
    saved = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, _Outliving(sys.stdout))
    sys.stderr = cast(TextIO, _Outliving(sys.stderr))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
