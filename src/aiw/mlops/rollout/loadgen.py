"""Synthetic live traffic for a scoring endpoint: the tour, the tests and the benchmark use it to
watch a rollout decide on real requests.

:class:`LoadGenerator` runs ``workers`` threads, each posting one-row ``dataframe_records``
requests in a loop (keep-alive connections), and counts the answers per version (``v1``,
``v2`` ...), the failures per HTTP status (``http500`` ...) and the requests that failed in
transport (``transport``: a server may close a connection after an unhandled error, and the next
request on it fails). It also notes when the first and the last failure were seen.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from aiw.errors import InvalidInputError

__all__ = ["LoadGenerator"]


class LoadGenerator:
    """Post one-row scoring requests from several threads until stopped.

    Args:
        url: The scoring URL (``.../v1/models/NAME/predict``).
        api_key: The key sent as ``Authorization: Bearer``.
        rows: Input rows, sent in turn (each worker starts at its own offset).
        workers: Threads, each with its own keep-alive connection.
        timeout: Seconds one request may take.
    """

    def __init__(
        self, url: str, api_key: str, rows: Sequence[dict[str, Any]], *, workers: int = 6, timeout: float = 60.0
    ) -> None:
        if not rows:
            raise InvalidInputError("The 'rows' parameter of LoadGenerator must hold at least one row.")
        if not 1 <= workers <= 256:
            raise InvalidInputError(f"The 'workers' parameter of LoadGenerator must be in [1, 256]. Got {workers}.")
        self.url = url
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.bodies = [json.dumps({"dataframe_records": [row]}, default=str).encode() for row in rows]
        self.workers = workers
        self.timeout = timeout
        self.counts: Counter[str] = Counter()
        self.first_failure_at: float | None = None
        self.last_failure_at: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _run(self, offset: int) -> None:
        import httpx

        i = offset
        with httpx.Client(timeout=self.timeout) as client:
            while not self._stop.is_set():
                try:
                    r = client.post(self.url, content=self.bodies[i % len(self.bodies)], headers=self.headers)
                    key = f"v{r.json()['version']}" if r.status_code == 200 else f"http{r.status_code}"
                except httpx.TransportError:
                    key = "transport"
                with self._lock:
                    self.counts[key] += 1
                    if not key.startswith("v"):
                        now = time.time()
                        self.first_failure_at = self.first_failure_at or now
                        self.last_failure_at = now
                i += self.workers

    @property
    def failures(self) -> int:
        """Requests that got no answer (any HTTP error status, or a transport error)."""
        with self._lock:
            return sum(n for k, n in self.counts.items() if not k.startswith("v"))

    def mark(self) -> Counter[str]:
        """A copy of the counts now (to diff against later)."""
        with self._lock:
            return self.counts.copy()

    def start(self) -> LoadGenerator:
        """Start the worker threads."""
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._run, args=(k,), daemon=True, name=f"aiw-load-{k}")
            for k in range(self.workers)
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Stop the workers and wait for their last requests."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 5)

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
