"""What a rollout is asked to do: the plan (steps, bake window) and its guardrails.

A :class:`RolloutPlan` is plain, validated data: it is stored as JSON with the rollout and read
back by whichever server process drives it. Defaults come from ``settings.rollout``
(:meth:`RolloutPlan.from_settings`); the CLI and API override single fields.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from aiw.errors import InvalidInputError

if TYPE_CHECKING:
    from aiw.settings import RolloutSettings

__all__ = ["MODES", "Guardrails", "Mode", "RolloutPlan", "format_share", "parse_duration", "parse_steps"]

Mode = Literal["canary", "shadow"]
MODES: tuple[str, ...] = ("canary", "shadow")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | float | int) -> float:
    """Seconds from ``"60s"``, ``"500ms"``, ``"2m"``, ``"1h"`` or a bare number of seconds.

    Raises:
        InvalidInputError: not a positive duration.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if not match:
            raise InvalidInputError(f"A duration must read like 60s, 500ms, 2m or 1h. Got {text!r} instead.")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInputError(f"A duration must be positive. Got {text!r} instead.")
    return seconds


def parse_steps(text: str | Iterable[float | int | str]) -> tuple[float, ...]:
    """Traffic shares in percent from ``"5,10,25,50,100"`` or a sequence of numbers.

    Raises:
        InvalidInputError: a value is not a number (see :class:`RolloutPlan` for the other rules).
    """
    items: list[Any] = []
    if isinstance(text, str):
        items.extend(text.replace(";", ",").split(","))
    else:
        items.extend(text)
    steps = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        try:
            steps.append(float(str(item).strip().rstrip("%")))
        except ValueError:
            raise InvalidInputError(
                f"Each step must be a percentage such as 5 or 12.5. Got {item!r} in {text!r}.",
                hint="write steps like 5,10,25,50,100",
            ) from None
    return tuple(steps)


def format_share(share: float) -> str:
    """``0.05`` -> ``"5%"``, ``0.125`` -> ``"12.5%"``."""
    pct = share * 100
    return f"{pct:.0f}%" if abs(pct - round(pct)) < 1e-9 else f"{pct:g}%"


def _check(owner: str, name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise InvalidInputError(f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead.")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Guardrails:
    """When the candidate is rolled back, and how much traffic it must have served to be judged.

    Attributes:
        max_error_rate: Candidate error rate (failed / requests, server errors only) above which
            it is rolled back at once. Checked continuously: the candidate is rolled back as soon
            as it has ``min_requests`` requests above the rate, or earlier once its errors alone
            exceed ``max_error_rate * min_requests`` (the rate could then never come back under).
        max_p95_ratio: Candidate p95 latency divided by the champion's above which it is rolled
            back (1.2 = 20% slower), judged at the end of each bake window.
        latency_floor_ms: A p95 difference smaller than this never counts as a regression:
            sub-millisecond models differ by more than 20% through scheduling noise alone.
        max_prediction_psi: Population stability index between the champion's and the
            candidate's predictions (scores of a binary classifier, else values or labels) above
            which the candidate is rolled back, judged at the end of each bake window. 0.25 is
            the customary "significant shift".
        min_requests: Requests each arm needs in the current step before latency and shift are
            judged and before the step may advance.
    """

    max_error_rate: float = 0.05
    max_p95_ratio: float = 1.2
    latency_floor_ms: float = 2.0
    max_prediction_psi: float = 0.25
    min_requests: int = 100

    def __post_init__(self) -> None:
        owner = "Guardrails"
        _check(
            owner,
            "max_error_rate",
            self.max_error_rate,
            _number(self.max_error_rate) and 0 <= self.max_error_rate < 1,
            "a float in [0, 1)",
        )
        _check(
            owner,
            "max_p95_ratio",
            self.max_p95_ratio,
            _number(self.max_p95_ratio) and self.max_p95_ratio >= 1,
            "a float >= 1",
        )
        _check(
            owner,
            "latency_floor_ms",
            self.latency_floor_ms,
            _number(self.latency_floor_ms) and self.latency_floor_ms >= 0,
            "a float >= 0",
        )
        _check(
            owner,
            "max_prediction_psi",
            self.max_prediction_psi,
            _number(self.max_prediction_psi) and self.max_prediction_psi > 0,
            "a float > 0",
        )
        _check(
            owner,
            "min_requests",
            self.min_requests,
            isinstance(self.min_requests, int)
            and not isinstance(self.min_requests, bool)
            and 1 <= self.min_requests <= 10_000_000,
            "an integer in [1, 10000000]",
        )

    @classmethod
    def from_settings(cls, settings: RolloutSettings, **overrides: Any) -> Guardrails:
        """The defaults of ``settings.rollout``, with ``overrides`` (None values are ignored)."""
        base: dict[str, Any] = {
            "max_error_rate": settings.max_error_rate,
            "max_p95_ratio": settings.max_p95_ratio,
            "latency_floor_ms": settings.latency_floor_ms,
            "max_prediction_psi": settings.max_prediction_psi,
            "min_requests": settings.min_requests,
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Guardrails:
        """Read back :meth:`to_dict` (unknown keys are refused)."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise InvalidInputError(
                f"Unknown guardrail(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}."
            )
        return cls(**dict(d))


@dataclass(frozen=True)
class RolloutPlan:
    """One rollout of a candidate version against the current ``@champion``.

    Attributes:
        model: The registered model.
        candidate_version: The version being rolled out.
        champion_version: The version ``@champion`` named when the rollout started.
        mode: ``canary`` (the candidate answers its share of live traffic) or ``shadow`` (it
            receives a mirrored copy of every request; its answers are recorded, never returned).
        steps: Candidate shares in percent, strictly increasing, in (0, 100]; a canary's last
            step is 100. A shadow has the single step 100 (every request mirrored).
        bake_s: Seconds each step runs before it may advance (and before latency and prediction
            shift are judged).
        guardrails: When to roll back, and the traffic needed to decide.
    """

    model: str
    candidate_version: int
    champion_version: int
    mode: str = "canary"
    steps: tuple[float, ...] = (5.0, 10.0, 25.0, 50.0, 100.0)
    bake_s: float = 60.0
    guardrails: Guardrails = field(default_factory=Guardrails)

    def __post_init__(self) -> None:
        owner = "RolloutPlan"
        _check(owner, "model", self.model, isinstance(self.model, str) and bool(self.model.strip()), "a model name")
        for name in ("candidate_version", "champion_version"):
            value = getattr(self, name)
            _check(
                owner,
                name,
                value,
                isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                "a positive integer",
            )
        _check(owner, "mode", self.mode, self.mode in MODES, f"one of {', '.join(MODES)}")
        if self.candidate_version == self.champion_version:
            raise InvalidInputError(
                f"Version {self.candidate_version} of {self.model!r} already is @champion; nothing to roll out.",
                hint="roll out another version",
            )
        steps = tuple(float(s) for s in self.steps) if isinstance(self.steps, list | tuple) else self.steps
        if self.mode == "shadow" and steps != (100.0,):
            steps = (100.0,)
        _check(
            owner,
            "steps",
            self.steps,
            isinstance(steps, tuple)
            and len(steps) >= 1
            and all(_number(s) and 0 < s <= 100 for s in steps)
            and all(b > a for a, b in itertools.pairwise(steps)),
            "strictly increasing percentages in (0, 100]",
        )
        _check(owner, "steps", self.steps, steps[-1] == 100.0, "a list ending at 100 (the candidate takes all traffic)")
        object.__setattr__(self, "steps", steps)
        _check(
            owner,
            "bake_s",
            self.bake_s,
            _number(self.bake_s) and 0 < self.bake_s <= 7 * 86400,
            "a duration in seconds in (0, 604800]",
        )
        if not isinstance(self.guardrails, Guardrails):
            raise InvalidInputError(
                f"The 'guardrails' parameter of RolloutPlan must be Guardrails. "
                f"Got {type(self.guardrails).__name__} instead."
            )

    @classmethod
    def from_settings(
        cls,
        settings: RolloutSettings,
        model: str,
        candidate_version: int,
        champion_version: int,
        *,
        mode: str = "canary",
        steps: Iterable[float] | str | None = None,
        bake_s: float | str | None = None,
        **guardrails: Any,
    ) -> RolloutPlan:
        """A plan with the defaults of ``settings.rollout``; any argument given overrides them.

        Raises:
            InvalidInputError: a bad step list, duration or guardrail.
        """
        return cls(
            model=model,
            candidate_version=int(candidate_version),
            champion_version=int(champion_version),
            mode=mode,
            steps=parse_steps(steps if steps is not None else settings.steps),
            bake_s=parse_duration(bake_s if bake_s is not None else settings.bake_s),
            guardrails=Guardrails.from_settings(settings, **guardrails),
        )

    def share(self, step_index: int) -> float:
        """The candidate's share (0..1) at ``step_index``."""
        if not 0 <= step_index < len(self.steps):
            raise InvalidInputError(f"Step {step_index} is outside the plan's {len(self.steps)} steps.")
        return self.steps[step_index] / 100.0

    @property
    def last_step(self) -> int:
        """The index of the final step."""
        return len(self.steps) - 1

    def with_guardrails(self, **changes: Any) -> RolloutPlan:
        """A copy whose guardrails have ``changes``."""
        return replace(self, guardrails=replace(self.guardrails, **changes))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "model": self.model,
            "candidate_version": self.candidate_version,
            "champion_version": self.champion_version,
            "mode": self.mode,
            "steps": list(self.steps),
            "bake_s": self.bake_s,
            "guardrails": self.guardrails.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RolloutPlan:
        """Read back :meth:`to_dict`."""
        try:
            return cls(
                model=str(d["model"]),
                candidate_version=int(d["candidate_version"]),
                champion_version=int(d["champion_version"]),
                mode=str(d.get("mode", "canary")),
                steps=tuple(float(s) for s in d["steps"]),
                bake_s=float(d["bake_s"]),
                guardrails=Guardrails.from_dict(d.get("guardrails") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"Not a rollout plan: {exc}") from exc

    def describe(self) -> str:
        """``canary 5% -> 10% -> 25% -> 50% -> 100%, bake 60 s``."""
        if self.mode == "shadow":
            return f"shadow (every request mirrored), bake {self.bake_s:g} s"
        return f"canary {' -> '.join(format_share(s / 100) for s in self.steps)}, bake {self.bake_s:g} s"
