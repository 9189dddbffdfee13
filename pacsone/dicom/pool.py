"""The threads that serve a worker's associations.

A thread outlives its association so that its database connection serves the next one too (a
new MariaDB connection costs milliseconds). Two bounds keep those connections in check:
- at most `size` threads (the server rejects associations beyond its cap before they get here,
  so nothing waits long in the queue);
- a thread that got no work for `idle_seconds` runs `on_idle` (which closes its database
  connections) and ends; a new one starts when work comes.
"""

import logging
import queue
import threading
from typing import Callable

log = logging.getLogger(__name__)


class ThreadPool:
    def __init__(self, size: int, idle_seconds: float, on_idle: Callable[[], None] = lambda: None,
                 name: str = "association"):
        self.size = size
        self.idle_seconds = idle_seconds
        self.on_idle = on_idle
        self.name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0  # alive
        self._idle = 0  # alive and not promised any queued work
        self._started = 0

    @property
    def threads(self) -> int:
        return self._threads

    def submit(self, work: Callable, *args) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1  # an idle thread will take it
            elif self._threads < self.size:
                self._threads += 1
                self._started += 1
                threading.Thread(target=self._run, name=f"{self.name}-{self._started}", daemon=True).start()
            self._queue.put((work, args))

    def _run(self) -> None:
        while True:
            try:
                work, args = self._queue.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    if not self._idle:
                        continue  # work was promised to an idle thread a moment ago: maybe this one
                    self._idle -= 1
                    self._threads -= 1
                try:
                    self.on_idle()
                except Exception:
                    log.exception("pool thread cleanup failed")
                return
            try:
                work(*args)
            except Exception:
                log.exception("pool work failed")
            with self._lock:
                self._idle += 1
