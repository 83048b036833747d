"""Safe stops: SIGTERM/SIGINT set a flag that the run driver checks between steps."""
from __future__ import annotations

import contextlib
import signal
import sys


class StopRequest:
    """SIGTERM/SIGINT set a flag that the loop checks between steps, so the step in flight finishes.

    The step in flight may be the first, which compiles for a minute or more: the first signal says so,
    and a second SIGINT aborts at once (KeyboardInterrupt), without a checkpoint.
    """

    def __init__(self):
        self.signal_name = None

    @contextlib.contextmanager
    def installed(self):
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def handler(signum, frame):
            if self.signal_name is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt("second SIGINT: aborted without saving the step in flight")
            self.signal_name = signal.Signals(signum).name
            print(f"{self.signal_name}: stopping after the step in flight (a first step may still be compiling); "
                  f"a checkpoint follows. Press Ctrl-C again to abort at once.", file=sys.stderr, flush=True)

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
