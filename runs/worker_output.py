"""What a stage's worker prints goes to the stage's log tail too: log records (transformers, TRL, datasets,
our own modules at INFO and above), ``print`` output and warnings written to stdout/stderr by the thread that
runs the stage. Each line is redacted (:func:`training.redaction.redact`) and bounded by the reporter (the
last :data:`runs.progress.LOG_TAIL_LINES` lines of at most 1,000 characters are kept), and still reaches the
terminal as before.

Only the stage's own thread is captured: with the embedded queue the web server shares the process, and its
request logs must not land in a stage's log.
"""
from __future__ import annotations

import io
import logging
import sys
import threading
import warnings
from contextlib import contextmanager

from training.progress import Reporter
from training.redaction import redact

_guard = threading.local()


def _forward(reporter: Reporter, line: str) -> None:
    """Send one line to the reporter, never recursively (the reporter's own writes may log or print)."""
    line = line.rstrip()
    if not line or getattr(_guard, "busy", False):
        return
    _guard.busy = True
    try:
        reporter.log(redact(line))
    except Exception:  # a failing log tail must never fail the stage
        pass
    finally:
        _guard.busy = False


class _ThreadHandler(logging.Handler):
    """Forwards log records made in one thread to a reporter."""

    def __init__(self, reporter: Reporter, thread_id: int, level: int) -> None:
        super().__init__(level)
        self.reporter = reporter
        self.thread_id = thread_id
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread_id:
            return
        try:
            text = self.format(record)
        except Exception:
            return
        for line in text.splitlines()[:20]:
            _forward(self.reporter, line)


class _ThreadTee(io.TextIOBase):
    """A stdout/stderr stand-in: writes from one thread are also cut into lines for the reporter; every
    write still goes to the real stream."""

    def __init__(self, stream, reporter: Reporter, thread_id: int) -> None:
        self.stream = stream
        self.reporter = reporter
        self.thread_id = thread_id
        self._partial = ""

    def write(self, text: str) -> int:
        if threading.get_ident() == self.thread_id and not getattr(_guard, "busy", False):
            # progress bars redraw with \r: keep the last state of such a line
            lines = (self._partial + text.replace("\r\n", "\n")).split("\n")
            self._partial = lines.pop()[-2000:]
            for line in lines:
                _forward(self.reporter, line.rsplit("\r", 1)[-1])
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def flush_partial(self) -> None:
        if self._partial:
            _forward(self.reporter, self._partial.rsplit("\r", 1)[-1])
            self._partial = ""

    def __getattr__(self, name):  # fileno, isatty, encoding… of the real stream
        return getattr(self.stream, name)


@contextmanager
def worker_output(reporter: Reporter, level: int = logging.INFO):
    """Within the block, what the current thread logs (``level`` and above), prints or warns goes to
    ``reporter.log`` as well as where it went before."""
    thread_id = threading.get_ident()
    handler = _ThreadHandler(reporter, thread_id, level)
    root = logging.getLogger()
    # libraries that keep their records to themselves (transformers sets propagate=False on its logger)
    # get the handler too; the others reach it through the root
    islands = [lg for lg in list(logging.root.manager.loggerDict.values())
               if isinstance(lg, logging.Logger) and not lg.propagate]
    for logger in [root, *islands]:  # each logger's own level still decides what is logged at all
        logger.addHandler(handler)
    out, err = _ThreadTee(sys.stdout, reporter, thread_id), _ThreadTee(sys.stderr, reporter, thread_id)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    shown = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if threading.get_ident() == thread_id:
            _forward(reporter, f"{category.__name__}: {message} ({filename}:{lineno})")
        return shown(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning
    try:
        yield
    finally:
        out.flush_partial()
        err.flush_partial()
        # another thread may have swapped the streams meanwhile: only put back what we replaced
        if sys.stdout is out:
            sys.stdout = saved[0]
        if sys.stderr is err:
            sys.stderr = saved[1]
        if warnings.showwarning is showwarning:
            warnings.showwarning = shown
        for logger in [root, *islands]:
            logger.removeHandler(handler)
