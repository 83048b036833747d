"""Safe stops: SIGTERM/SIGINT set a flag that the run driver checks between steps."""
from __future__ import annotations

import contextlib
import signal


class StopRequest:
    """SIGTERM/SIGINT set a flag that the loop checks between steps, so the step in flight finishes."""

    def __init__(self):
        self.signal_name = None

    @contextlib.contextmanager
    def installed(self):
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def handler(signum, frame):
            self.signal_name = signal.Signals(signum).name

        try:
            for sig in previous:
                signal.signal(sig, handler)
        except ValueError:  # not the main thread: signals cannot be caught here
            previous = {}
        try:
            yield self
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def __bool__(self):
        return self.signal_name is not None
