"""Ctrl-C and SIGTERM for operations that must finish what they started before they end
(`listen`, `check`, `metrics --serve`): the signals are counted while the operation runs and it
looks at the count between steps, instead of being cut by a KeyboardInterrupt anywhere.
"""

from __future__ import annotations

import signal
from typing import Any


class Interrupts:
    """SIGINT and SIGTERM while a long operation runs: counted, never raised (so nothing is
    left half done: a listen event half-counted, a check's session not deleted), and, once `wake`
    is given a descriptor the operation waits on, ending that wait at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signals = 0
        self._previous: dict[int, Any] = {}
        self._wakeup: int | None = None

    def __enter__(self) -> Interrupts:
        try:
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._caught)
        except ValueError:  # not the main thread (rtppctl run from a thread): signals stay as they are
            pass
        return self

    def _caught(self, number: int, frame: object) -> None:
        self.signals += 1

    def wake(self, fd: int | None) -> None:
        """Have a signal write to `fd` (None: no longer); only while handlers are ours."""
        if not self._previous:
            return
        if fd is None:
            if self._wakeup is not None:
                signal.set_wakeup_fd(self._wakeup)
                self._wakeup = None
        elif self._wakeup is None:
            self._wakeup = signal.set_wakeup_fd(fd, warn_on_full_buffer=False)

    def __exit__(self, *exc: object) -> None:
        self.wake(None)
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()


__all__ = ["Interrupts"]
