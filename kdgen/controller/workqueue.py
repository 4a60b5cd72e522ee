"""A work queue of keys (KD names): dedup, delays, an in-flight set and per-key backoff.

client-go's ``workqueue`` is the model: a key added many times is processed once; a key added
while a worker holds it is processed again after ``done`` (never by two workers at once); a
failed key comes back after an exponential, per-key delay that ``forget`` resets. Each key
also remembers since when it has been waiting (for the lag metric). Time comes from an
injected ``monotonic`` function, so the unit tests drive it with a fake clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

BACKOFF_BASE = 0.5
"""Seconds before the first retry of a failed key; doubled per failure."""
BACKOFF_MAX = 30.0
"""The longest per-key retry delay."""


class WorkQueue:
    """Keys waiting to be processed, each due at some time."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        backoff_base: float = BACKOFF_BASE,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self._now = monotonic
        self._base, self._max = backoff_base, backoff_max
        self._cond = threading.Condition()
        self._due: dict[str, float] = {}
        self._since: dict[str, float] = {}
        self._active: set[str] = set()
        self._again: dict[str, tuple[float, float]] = {}  # added while active: (due, since)
        self._failures: dict[str, int] = {}

    def __len__(self) -> int:
        with self._cond:
            return len(self._due) + len(self._again)

    def add(self, key: str, *, delay: float = 0.0, since: float | None = None) -> None:
        """Queue ``key`` to be due in ``delay`` seconds (an earlier due time wins)."""
        now = self._now()
        due, waiting = now + delay, now if since is None else since
        with self._cond:
            if key in self._active:
                old_due, old_since = self._again.get(key, (due, waiting))
                self._again[key] = (min(old_due, due), min(old_since, waiting))
                return
            self._due[key] = min(self._due.get(key, due), due)
            self._since[key] = min(self._since.get(key, waiting), waiting)
            self._cond.notify_all()

    def add_failed(self, key: str, *, since: float | None = None) -> float:
        """Queue ``key`` again after its per-key backoff; return the delay chosen."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay = min(self._base * 2.0**failures, self._max)
        self.add(key, delay=delay, since=since)
        return delay

    def forget(self, key: str) -> None:
        """Reset ``key``'s backoff (it succeeded)."""
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        """How many times in a row ``key`` failed."""
        with self._cond:
            return self._failures.get(key, 0)

    def take(self, timeout: float = 0.0, limit: int = 0) -> list[tuple[str, float]]:
        """Wait up to ``timeout`` seconds for due keys; mark them active and return them.

        Each key comes with the time it has been waiting since. ``limit`` caps how many are
        returned (0: all that are due). Call ``done`` for each when processed.
        """
        with self._cond:
            deadline = self._now() + timeout
            while True:
                now = self._now()
                ready = sorted((due, key) for key, due in self._due.items() if due <= now)
                if ready or now >= deadline:
                    break
                next_due = min(self._due.values(), default=deadline)
                self._cond.wait(max(0.0, min(deadline, next_due) - now))
            if limit:
                ready = ready[:limit]
            taken = []
            for _, key in ready:
                del self._due[key]
                taken.append((key, self._since.pop(key)))
                self._active.add(key)
            return taken

    def done(self, key: str) -> None:
        """``key`` was processed; if it was added meanwhile, queue it again."""
        with self._cond:
            self._active.discard(key)
            again = self._again.pop(key, None)
            if again is not None:
                due, since = again
                self._due[key] = min(self._due.get(key, due), due)
                self._since[key] = min(self._since.get(key, since), since)
                self._cond.notify_all()
