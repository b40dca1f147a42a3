"""Log and trace output that never blocks the serving loop and never stops the server.

:class:`LineSink` holds a bounded queue of text lines and one writer thread that writes them
to a descriptor (stderr, stdout) or a file. :meth:`LineSink.put` never blocks: when the queue
is full (a reader that stopped reading a pipe), the line is dropped and counted in
:attr:`LineSink.dropped_lines`. When the descriptor goes away (a broken pipe: ``serve ... 2>&1
| head -1``; a closed stderr), the sink stops writing there, counts every later line as
dropped, and points the descriptor at ``/dev/null`` so that no later write by anyone (an exit
message, the interpreter flushing ``sys.stderr``) fails on it. :meth:`LineSink.close` waits
for the queue to drain for at most a bound, never longer: a writer stuck on a full pipe is
left behind (a daemon thread), so stopping stays prompt.

:class:`SinkHandler` is the :mod:`logging` handler that formats records into a sink;
:func:`serve_logging` wires the ``secure_emu`` logger to one. This module must never write
from the caller's thread (only the writer thread writes) and never raise from ``put``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import selectors
import threading
from pathlib import Path

__all__ = [
    "CLOSE_WAIT_SECONDS",
    "DEFAULT_MAX_QUEUED_LINES",
    "LineSink",
    "SinkHandler",
    "serve_logging",
]

#: Lines a sink holds for a reader that is behind; more are dropped and counted.
DEFAULT_MAX_QUEUED_LINES = 10_000
#: Longest :meth:`LineSink.close` waits for queued lines to be written.
CLOSE_WAIT_SECONDS = 0.25
#: Lines joined into one write when several are waiting.
_BATCH_LINES = 256
_STOP = object()


class LineSink:
    """Lines to a descriptor or a file, written by a thread of its own; see the module."""

    def __init__(self, *, fd: int | None = None, path: Path | None = None,
                 max_queued_lines: int = DEFAULT_MAX_QUEUED_LINES, name: str = "log") -> None:
        """Write to ``fd`` (not closed by the sink) or append to the file ``path`` (opened
        now: an :class:`OSError` here says the file cannot be written)."""
        if (fd is None) == (path is None):
            raise ValueError("give exactly one of fd and path")
        self._owns_fd = path is not None
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) \
            if path is not None else fd
        self.name = name
        self._queue: queue.Queue[object] = queue.Queue(max_queued_lines)
        self._dropped = 0
        self._dropped_lock = threading.Lock()
        self.broken_reason: str | None = None
        self._thread = threading.Thread(target=self._write_lines, name=f"secure-emu {name}",
                                        daemon=True)
        self._thread.start()

    @property
    def dropped_lines(self) -> int:
        """Lines not written: the queue was full, or the reader had gone."""
        return self._dropped

    def _count_dropped(self, lines: int) -> None:
        with self._dropped_lock:
            self._dropped += lines

    def put(self, line: str) -> None:
        """Queue one line (a newline is added); never blocks, never raises."""
        if self.broken_reason is not None:
            self._count_dropped(1)
            return
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self._count_dropped(1)

    def close(self, wait_seconds: float = CLOSE_WAIT_SECONDS) -> None:
        """Let the writer finish what is queued, waiting at most ``wait_seconds``."""
        with contextlib.suppress(queue.Full):  # full: the writer is stuck; do not wait on it
            self._queue.put_nowait(_STOP)
        self._thread.join(wait_seconds)
        if not self._thread.is_alive() and self._owns_fd and self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    # ------------------------------------------------------------------- the writer thread
    def _write_lines(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            lines = [item]
            stop = False
            with contextlib.suppress(queue.Empty):
                while len(lines) < _BATCH_LINES:
                    more = self._queue.get_nowait()
                    if more is _STOP:
                        stop = True
                        break
                    lines.append(more)
            if self.broken_reason is not None:
                self._count_dropped(len(lines))
            else:
                self._write_all(("\n".join(map(str, lines)) + "\n").encode("utf-8", "replace"),
                                len(lines))
            if stop:
                return

    def _write_all(self, data: bytes, lines: int) -> None:
        view = memoryview(data)
        while view:
            try:
                if self._fd is None:
                    raise OSError(errno.EBADF, "closed")
                view = view[os.write(self._fd, view):]
            except BlockingIOError:  # a descriptor someone made non-blocking: wait for room
                with selectors.DefaultSelector() as selector:
                    selector.register(self._fd, selectors.EVENT_WRITE)
                    selector.select(1.0)
            except OSError as error:
                self._break(error, lines)
                return

    def _break(self, error: OSError, lines: int) -> None:
        """The reader is gone: stop writing there, and make later writes by anyone harmless."""
        self.broken_reason = error.strerror or str(error)
        self._count_dropped(lines)
        if not self._owns_fd and self._fd is not None and error.errno != errno.EBADF:
            with contextlib.suppress(OSError):
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, self._fd)
                os.close(null)


class SinkHandler(logging.Handler):
    """A :mod:`logging` handler whose ``emit`` only formats and queues: it never blocks."""

    def __init__(self, sink: LineSink, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.put(self.format(record))
        except Exception:  # a bad format argument: never from a logging call into the loop
            self.sink.put(f"secure-emu: unformattable log record {record.msg!r}")


def serve_logging(sink: LineSink, *, level: int = logging.INFO) -> SinkHandler:
    """Send the ``secure_emu`` loggers (``secure_emu.serve`` among them) to ``sink`` as
    ``secure-emu: message`` lines; returns the handler (remove it when done)."""
    handler = SinkHandler(sink)
    handler.setFormatter(logging.Formatter("secure-emu: %(message)s"))
    logger = logging.getLogger("secure_emu")
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler
