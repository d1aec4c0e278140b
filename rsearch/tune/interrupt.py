"""Ctrl-C and SIGTERM stop the whole search, not just the regime that is running.

Ray Tune catches SIGINT inside Tuner.fit(), stops the run gracefully (one last save of the
experiment state) and *returns*, so a driver that goes on to the next regime would finish
the study with trials still running and call it finished. Here the driver owns SIGINT and
SIGTERM for the whole search:

- inside fit(), the first signal is handed to Tune's own graceful stop (Tune listens for
  SIGUSR1 as for SIGINT; its SIGINT handler is switched off so that only ours sees it), and
  the driver raises Interrupted once fit() has returned: no further regime starts;
- outside fit() (measuring costs, between regimes), or at a second signal, it stops at once;
- the driver then marks experiment.json `interrupted` and the CLI exits 128 + the signal
  number (130 for SIGINT, 143 for SIGTERM) with the command that resumes.
"""

from __future__ import annotations

import os
import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """The search was stopped by a signal; `exit_code` is 128 + its number."""

    def __init__(self, signum: int, exp_dir: str):
        self.signum, self.exp_dir = signum, exp_dir
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


class StopSignals:
    """Context manager: SIGINT/SIGTERM handlers for the duration of a search."""

    def __init__(self):
        self.received: int | None = None
        self._in_fit = False
        self._previous = {}

    def __enter__(self):
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # ours forwards the signal to Tune instead
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False

    def _handle(self, signum, frame):
        first = self.received is None
        if first:
            self.received = signum
        if first and self._in_fit and hasattr(signal, "SIGUSR1"):
            os.kill(
                os.getpid(), signal.SIGUSR1
            )  # Tune's graceful stop: last state saved, fit() returns
        else:
            raise KeyboardInterrupt

    def fit(self, tuner):
        """tuner.fit(), then stop here if a signal arrived while it ran."""
        self._in_fit = True
        try:
            return tuner.fit()
        finally:
            self._in_fit = False
            if self.received is not None:
                raise KeyboardInterrupt
