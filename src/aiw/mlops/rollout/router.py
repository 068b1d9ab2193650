"""The traffic router: which version answers each request while a rollout is live.

The serving layer calls :meth:`RolloutRouter.route` once per request for the model's
``@champion``. Without a live rollout of that model it answers ``None`` (one dictionary lookup);
with one it answers a :class:`Route`: the version to score with, and two callbacks,
:meth:`Route.done` and :meth:`Route.failed`, that record the outcome for that arm::

    route = router.route(name, ref)            # None unless a rollout of `name` is live
    if route is not None:
        ref = route.ref                        # the champion's or the candidate's version
    ...score...
    route.done(seconds, prediction, batch)     # or route.failed(exc)

* **Canary**: the candidate answers a request with probability equal to the current step's share
  (independent draws: no shared counter to contend on). Sticky routing by a request key is
  available with ``route(name, ref, key=...)`` (CRC32 of the key against the share).
* **Shadow**: the champion answers every request; :meth:`Route.done` queues a mirrored copy of
  the validated batch for the candidate on a background thread. The caller never waits for it and
  never sees its answer or its failure; when the queue is full, mirrored copies are dropped and
  counted. The candidate's answers are recorded, and compared with the champion's row by row
  (label agreement).

Outcomes are kept in memory per arm, bounded (``settings.rollout.window``), as
``(time, ok, latency_ms, prediction sample, running totals)``; appending to a ``deque`` is
atomic, so recording takes no lock. Client errors (malformed payloads, :class:`~aiw.errors.InvalidInputError`) are
not counted against either arm: they say nothing about the model.

The :class:`~aiw.mlops.rollout.controller.RolloutController` (a daemon thread started with the
first routed request) reads running rollouts from the database, warms their models, applies the
state machine and updates the live shares here.
"""

from __future__ import annotations

import bisect
import logging
import random
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from aiw.errors import InvalidInputError
from aiw.mlops.rollout.guardrails import ArmMetrics

if TYPE_CHECKING:
    from aiw.mlops.rollout.controller import RolloutController
    from aiw.mlops.rollout.store import Rollout
    from aiw.mlops.serving.inputs import ColumnBatch
    from aiw.mlops.serving.loader import ModelResolver
    from aiw.mlops.serving.predictor import Prediction
    from aiw.settings import RolloutSettings
    from aiw.workspace import Workspace

__all__ = ["CANDIDATE", "CHAMPION", "LiveRollout", "RolloutRouter", "Route"]

_log = logging.getLogger(__name__)

CHAMPION = "champion"
CANDIDATE = "candidate"
_SAMPLE = 8  # predictions kept per request for the shift check: enough, and cheap on large batches
_PREDICTIONS = 5000  # predictions per arm handed to the shift check
_CHAMPION_REFS = frozenset({None, "", "champion"})


_Outcome = tuple[float, bool, float, tuple[Any, ...], int, int]


class _Arm:
    """Bounded outcomes of one arm: ``(unix time, ok, latency ms, prediction sample, requests so
    far, errors so far)``. The running totals make counting a window a binary search instead of
    a scan. Each arm has one writer thread (the event loop; a shadow's candidate: the shadow
    worker), so the totals need no lock.
    """

    __slots__ = ("errors", "outcomes", "requests")

    def __init__(self, window: int) -> None:
        self.outcomes: deque[_Outcome] = deque(maxlen=window)
        self.requests = 0
        self.errors = 0

    def add(self, ok: bool, latency_ms: float, sample: tuple[Any, ...]) -> None:
        self.requests += 1
        if not ok:
            self.errors += 1
        self.outcomes.append((time.time(), ok, latency_ms, sample, self.requests, self.errors))

    def since(self, t0: float) -> list[_Outcome]:
        """The outcomes at or after ``t0``, oldest first."""
        for _ in range(5):
            try:
                rows = list(self.outcomes)
                break
            except RuntimeError:  # mutated while copied (only possible without the GIL): retry
                continue
        else:
            return []
        return rows[bisect.bisect_left(rows, t0, key=itemgetter(0)) :]

    def counts(self, t0: float) -> ArmMetrics:
        """Requests and errors since ``t0`` (cheap: no percentiles)."""
        rows = self.since(t0)
        if not rows:
            return ArmMetrics()
        first, last = rows[0], rows[-1]
        return ArmMetrics(last[4] - first[4] + 1, last[5] - first[5] + (0 if first[1] else 1))

    def metrics(self, t0: float) -> ArmMetrics:
        """Counts, latency percentiles and a prediction sample since ``t0``."""
        rows = self.since(t0)
        latencies = [r[2] for r in rows if r[1]]
        errors = len(rows) - len(latencies)
        predictions: list[Any] = []
        for r in reversed(rows):
            if len(predictions) >= _PREDICTIONS:
                break
            predictions.extend(r[3])
        return ArmMetrics.from_outcomes(latencies, errors, predictions[:_PREDICTIONS])


@dataclass
class LiveRollout:
    """A running rollout as this process serves it.

    Attributes:
        rollout: The stored rollout, as last read or written by this process.
        share: The candidate's share of answered traffic now.
        mirror: Whether requests are mirrored to the candidate (shadow).
        observed_since: When this process began serving it (after a restart, the bake window and
            the metrics start again from here).
        last_code: The code of the last decision recorded by this process (repeated holds are
            recorded once).
    """

    rollout: Rollout
    share: float
    mirror: bool
    observed_since: float
    champion: _Arm
    candidate: _Arm
    last_code: str | None = None
    mirrored: int = 0
    mirror_dropped: int = 0
    mirror_pending: int = 0
    compared_rows: int = 0
    agreeing_rows: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def model(self) -> str:
        """The model rolled out."""
        return self.rollout.model

    @property
    def id(self) -> int:
        """The rollout's id."""
        return self.rollout.id

    def step_since(self) -> float:
        """When the current step's metrics start (its start, or when this process took over)."""
        return max(self.rollout.step_started_at.timestamp(), self.observed_since)

    def arm_metrics(self) -> tuple[ArmMetrics, ArmMetrics]:
        """(champion, candidate): both over the current step, the same stretch of traffic split
        between them, so that a drift of the traffic itself is not taken for a difference between
        the models. In a canary's 100% step the champion answers nothing; its baseline is then its
        traffic since this process took the rollout over."""
        since = self.step_since()
        candidate = self.candidate.metrics(since)
        if self.share >= 1.0 and not self.mirror:
            return self.champion.metrics(self.observed_since), candidate
        return self.champion.metrics(since), candidate

    def arm_counts(self) -> tuple[ArmMetrics, ArmMetrics]:
        """Like :meth:`arm_metrics`, with request and error counts only (cheap enough for every tick)."""
        since = self.step_since()
        candidate = self.candidate.counts(since)
        if self.share >= 1.0 and not self.mirror:
            return self.champion.counts(self.observed_since), candidate
        return self.champion.counts(since), candidate

    def snapshot(self) -> dict[str, Any]:
        """Live metrics for status output: both arms, the split and the shadow's agreement."""
        champion, candidate = self.arm_metrics()
        out: dict[str, Any] = {
            "rollout_id": self.id,
            "share": self.share,
            "mirror": self.mirror,
            "step_index": self.rollout.step_index,
            "step_since": self.step_since(),
            "champion": {"version": self.rollout.champion_version, **champion.to_dict()},
            "candidate": {"version": self.rollout.candidate_version, **candidate.to_dict()},
        }
        if self.mirror:
            out["shadow"] = {
                "mirrored": self.mirrored,
                "dropped": self.mirror_dropped,
                "pending": self.mirror_pending,
                "compared_rows": self.compared_rows,
                "agreement": (self.agreeing_rows / self.compared_rows) if self.compared_rows else None,
            }
        return out


class Route:
    """Where one request goes, and how its outcome is recorded.

    Attributes:
        ref: What to score with: the champion's or the candidate's version number.
        arm: ``champion`` or ``candidate``.
        version: The version that answers.
    """

    __slots__ = ("_live", "_router", "arm", "ref", "version")

    def __init__(self, router: RolloutRouter, live: LiveRollout, arm: str, version: int) -> None:
        self._router = router
        self._live = live
        self.arm = arm
        self.version = version
        self.ref = version

    def done(self, latency_s: float, prediction: Prediction, batch: ColumnBatch | None = None) -> None:
        """Record an answered request (and, in a shadow, mirror ``batch`` to the candidate)."""
        live = self._live
        arm = live.candidate if self.arm == CANDIDATE else live.champion
        arm.add(True, latency_s * 1000.0, _sample(prediction))
        if live.mirror and batch is not None:
            self._router._mirror(live, batch, prediction)

    def failed(self, exc: BaseException) -> None:
        """Record a failed request; client errors (malformed input) are not the model's fault."""
        if isinstance(exc, InvalidInputError):
            return
        live = self._live
        arm = live.candidate if self.arm == CANDIDATE else live.champion
        arm.add(False, 0.0, ())

    def __repr__(self) -> str:
        return f"Route({self._live.model!r}, {self.arm}, v{self.version})"


def _sample(prediction: Prediction) -> tuple[Any, ...]:
    score = prediction.score
    values = score if score is not None else prediction.predictions
    return tuple(values[:_SAMPLE].tolist())


class RolloutRouter:
    """Route requests of models with a live rollout, and record each arm's outcomes.

    Args:
        workspace: The workspace (its metadata DB holds the rollouts).
        resolver: The serving layer's model resolver (models warmed here serve there); one is
            made when omitted.
        settings: The rollout settings (default: the workspace's).
        autostart: Start the controller thread with the first routed request (tests and
            benchmarks drive :meth:`controller` ticks themselves with False).
        seed: Seed of the random split (None: unpredictable).
    """

    def __init__(
        self,
        workspace: Workspace,
        resolver: ModelResolver | None = None,
        *,
        settings: RolloutSettings | None = None,
        autostart: bool = True,
        seed: int | None = None,
    ) -> None:
        self.workspace = workspace
        self.settings = settings or workspace.settings.rollout
        self._resolver = resolver
        self._own_resolver = resolver is None
        self.autostart = autostart
        self._random = random.Random(seed).random
        self._live: dict[str, LiveRollout] = {}  # replaced whole, never mutated: readers take no lock
        self._lock = threading.Lock()
        self._started = not autostart
        self._controller: RolloutController | None = None
        self._shadow: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- the hot path ----------------------------------------------------------------------------
    def route(self, name: str, ref: str | int | None = None, *, key: str | None = None) -> Route | None:
        """The route of one request for ``name`` at ``ref``, or None to serve it as usual.

        Only requests for ``@champion`` (the default) are routed: an explicit version or another
        alias always gets exactly what it asked for.

        Args:
            name: The model.
            ref: The alias or version the caller asked for.
            key: A request key for sticky routing (the same key always takes the same arm at a
                given share); random when omitted.
        """
        if not self._started:
            self.start()
        live = self._live.get(name)
        if live is None or ref not in _CHAMPION_REFS:
            return None
        r = live.rollout
        if live.share > 0.0:
            draw = (zlib.crc32(key.encode()) / 4294967296.0) if key is not None else self._random()
            if draw < live.share:
                return Route(self, live, CANDIDATE, r.candidate_version)
        return Route(self, live, CHAMPION, r.champion_version)

    # -- shadow ----------------------------------------------------------------------------------
    def _mirror(self, live: LiveRollout, batch: ColumnBatch, champion: Prediction) -> None:
        if live.mirror_pending >= self.settings.shadow_queue:
            live.mirror_dropped += 1
            return
        with live.lock:
            live.mirror_pending += 1
        try:
            self._shadow_pool().submit(self._shadow_one, live, batch, champion)
        except RuntimeError:  # the pool is shutting down: the copy is dropped, the caller unaffected
            with live.lock:
                live.mirror_pending -= 1
                live.mirror_dropped += 1

    def _shadow_pool(self) -> ThreadPoolExecutor:
        pool = self._shadow
        if pool is None:
            with self._lock:
                if self._shadow is None:
                    self._shadow = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiw-shadow")
                pool = self._shadow
        return pool

    def _shadow_one(self, live: LiveRollout, batch: ColumnBatch, champion: Prediction) -> None:
        from aiw.mlops.serving.inputs import ColumnBatch as Batch

        started = time.perf_counter()
        try:
            loaded = self.resolver.load(live.model, live.rollout.candidate_version)
            missing = [n for n in loaded.schema.names if n not in batch.columns]
            if missing:
                raise ValueError(f"the champion's input lacks the candidate's columns {', '.join(missing)}")
            own = Batch({n: batch.columns[n] for n in loaded.schema.names}, batch.rows)
            prediction = loaded.predictor.predict(own)
            elapsed = time.perf_counter() - started
            live.candidate.add(True, elapsed * 1000.0, _sample(prediction))
            ours, theirs = np.asarray(prediction.predictions), np.asarray(champion.predictions)
            if ours.shape == theirs.shape:
                agree = int(np.count_nonzero(ours.astype(str) == theirs.astype(str)))
                with live.lock:
                    live.compared_rows += int(ours.size)
                    live.agreeing_rows += agree
        except Exception:  # the candidate's failure is recorded, never the caller's problem
            _log.debug("shadow request to %s v%s failed", live.model, live.rollout.candidate_version, exc_info=True)
            live.candidate.add(False, 0.0, ())
        finally:
            with live.lock:
                live.mirror_pending -= 1
                live.mirrored += 1

    # -- state kept in step with the controller --------------------------------------------------
    @property
    def resolver(self) -> ModelResolver:
        """The model resolver used to warm and (in a shadow) score the candidate."""
        if self._resolver is None:
            with self._lock:
                if self._resolver is None:
                    from aiw.mlops.serving.loader import ModelResolver

                    self._resolver = ModelResolver(self.workspace)
        return self._resolver

    @property
    def controller(self) -> RolloutController:
        """The controller that drives this router's rollouts."""
        if self._controller is None:
            with self._lock:
                if self._controller is None:
                    from aiw.mlops.rollout.controller import RolloutController

                    self._controller = RolloutController(self.workspace, self)
        return self._controller

    def live(self) -> list[LiveRollout]:
        """The rollouts this process serves now."""
        return list(self._live.values())

    def get(self, model: str) -> LiveRollout | None:
        """The live rollout of ``model`` in this process, if any."""
        return self._live.get(model)

    def __iter__(self) -> Iterator[LiveRollout]:
        return iter(self.live())

    def put(self, rollout: Rollout, *, now: float) -> LiveRollout:
        """Serve ``rollout`` (new) or take its latest stored state (known); returns the live entry."""
        with self._lock:
            live = self._live.get(rollout.model)
            if live is None or live.id != rollout.id:
                window = self.settings.window
                live = LiveRollout(rollout, 0.0, False, float(now), _Arm(window), _Arm(window))
            else:
                live.rollout = rollout
            state = rollout.state
            live.share = state.share(rollout.plan)
            live.mirror = state.mirror(rollout.plan) > 0
            if rollout.running:
                self._live = {**self._live, rollout.model: live}
            else:
                self._live = {k: v for k, v in self._live.items() if k != rollout.model}
            return live

    def set_share(self, model: str, share: float) -> None:
        """Change a live rollout's share at once (a rollback sends everything to the champion
        before the decision is even written)."""
        live = self._live.get(model)
        if live is not None:
            live.share = share
            if share == 0.0:
                live.mirror = False

    def drop(self, model: str) -> None:
        """Stop routing ``model``."""
        with self._lock:
            self._live = {k: v for k, v in self._live.items() if k != model}

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> RolloutRouter:
        """Start the controller thread (idempotent); the first pass runs at once."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                self._started = True
                return self
            self._started = True
            self._thread = threading.Thread(target=self._run, name="aiw-rollout-controller", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        controller = self.controller
        while not self._stop.is_set():
            try:
                controller.tick()
            except Exception:  # keep serving; the next tick retries (a database hiccup, say)
                _log.exception("rollout controller pass failed")
            self._stop.wait(self.settings.tick_s)

    def close(self) -> None:
        """Stop the controller thread and the shadow worker; forget live rollouts."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._shadow is not None:
            self._shadow.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._live = {}
        if self._own_resolver and self._resolver is not None:
            self._resolver.close()

    def __repr__(self) -> str:
        return f"RolloutRouter(live={sorted(self._live)})"
