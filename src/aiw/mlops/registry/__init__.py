"""The governed model registry over MLflow: versions with checksums and lineage, the approval
workflow that alone moves aliases, and model cards."""

from __future__ import annotations

from aiw.mlops.registry.approvals import Decision, GateResult, PromotionRequest, PromotionWorkflow, evaluate_gates
from aiw.mlops.registry.cards import ModelCard, build_card, write_model_card
from aiw.mlops.registry.checksums import ManifestCheck, check_manifest, manifest_digest, manifest_of
from aiw.mlops.registry.versions import (
    ALIAS_OF_TARGET,
    TARGETS,
    ColumnSpec,
    ModelRegistry,
    ModelSummary,
    ModelVersion,
    add_alias_listener,
    remove_alias_listener,
)

__all__ = [
    "ALIAS_OF_TARGET",
    "TARGETS",
    "ColumnSpec",
    "Decision",
    "GateResult",
    "ManifestCheck",
    "ModelCard",
    "ModelRegistry",
    "ModelSummary",
    "ModelVersion",
    "PromotionRequest",
    "PromotionWorkflow",
    "add_alias_listener",
    "build_card",
    "check_manifest",
    "evaluate_gates",
    "manifest_digest",
    "manifest_of",
    "remove_alias_listener",
    "write_model_card",
]
