"""Failed sign-ins, counted per client address: past a few in a window, that address waits.

A key is 16 characters or more, so guessing is hopeless anyway; the throttle keeps a script from
trying, and from filling the log. It lives in this process: each API process counts its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque

#: Failed sign-ins an address may make within WINDOW_SECONDS before it must wait.
MAX_FAILURES = 5
WINDOW_SECONDS = 60.0
#: Addresses remembered at most (the least recently failing are forgotten first).
MAX_ADDRESSES = 10_000


class SignInThrottle:
    def __init__(self, max_failures: int = MAX_FAILURES, window_seconds: float = WINDOW_SECONDS) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait_seconds(self, address: str) -> int:
        """How long `address` must wait before it may try again (0: it may try now)."""
        now = time.monotonic()
        with self._lock:
            recent = self._recent(address, now)
            if len(recent) < self.max_failures:
                return 0
            return max(1, math.ceil(recent[0] + self.window - now))

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            recent = self._recent(address, now)
            recent.append(now)
            self._failures[address] = recent
            self._failures.move_to_end(address)
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)

    def _recent(self, address: str, now: float) -> deque[float]:
        recent = self._failures.get(address, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if not recent:
            self._failures.pop(address, None)
        return recent
