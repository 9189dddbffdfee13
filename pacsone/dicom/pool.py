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
        self._waiting = 0  # threads waiting for work
        self._queued = 0  # work not taken yet
        self._started = 0

    @property
    def threads(self) -> int:
        return self._threads

    def submit(self, work: Callable, *args) -> None:
        with self._lock:
            self._queue.put((work, args))
            self._queued += 1
            if self._queued > self._waiting and self._threads < self.size:
                self._threads += 1
                self._started += 1
                threading.Thread(target=self._run, name=f"{self.name}-{self._started}", daemon=True).start()

    def close(self) -> None:
        """Each thread ends once it has no more work (closing its database connections), without
        waiting `idle_seconds`: a stopped server holds no connection."""
        with self._lock:
            for _ in range(self._threads):
                self._queue.put(None)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._waiting += 1
            try:
                item = self._queue.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    self._waiting -= 1
                    if self._queued:
                        continue  # work came in just now, counting on this thread: take it
                    self._threads -= 1
                self._cleanup()
                return
            if item is None:  # close(): end now
                with self._lock:
                    self._waiting -= 1
                    self._threads -= 1
                self._cleanup()
                return
            work, args = item
            with self._lock:
                self._waiting -= 1
                self._queued -= 1
            try:
                work(*args)
            except Exception:
                log.exception("pool work failed")

    def _cleanup(self) -> None:
        try:
            self.on_idle()
        except Exception:
            log.exception("pool thread cleanup failed")
