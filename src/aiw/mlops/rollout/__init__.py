"""Safe rollout: canary and shadow deployments with guardrails and automatic rollback.

* :mod:`.plan` - :class:`RolloutPlan` (steps, bake window) and :class:`Guardrails`.
* :mod:`.guardrails` - per-arm metrics and the error-rate, latency and prediction-shift checks.
* :mod:`.state` - the pure state machine: ``decide(plan, state, champion, candidate, now)``.
* :mod:`.store` - rollouts and every decision in the metadata database (audited).
* :mod:`.router` - :class:`RolloutRouter`: which version answers each request, per-arm outcomes,
  shadow mirroring; the serving layer calls it once per request.
* :mod:`.controller` - :class:`RolloutController`: applies the state machine to live rollouts,
  promotes through the registry, rolls back and raises alerts.
* :mod:`.service` - :class:`DeploymentService`: what the CLI, API and dashboard call.

Names are imported lazily, so importing this package costs nothing until one is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ArmMetrics",
    "Decision",
    "DeploymentService",
    "Guardrails",
    "Rollout",
    "RolloutController",
    "RolloutPlan",
    "RolloutRouter",
    "RolloutState",
    "RolloutStore",
    "decide",
    "manual_decision",
]

_WHERE = {
    "ArmMetrics": "guardrails",
    "Guardrails": "plan",
    "RolloutPlan": "plan",
    "Decision": "state",
    "RolloutState": "state",
    "decide": "state",
    "manual_decision": "state",
    "Rollout": "store",
    "RolloutStore": "store",
    "RolloutRouter": "router",
    "RolloutController": "controller",
    "DeploymentService": "service",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
