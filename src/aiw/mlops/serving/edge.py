"""Edge export: a governed version as an ONNX file, proven to match the original before it ships.

The model is loaded the governed way (checksums first), converted with skl2onnx, and both the
original and ONNX Runtime score the held-out rows logged with the model. The export fails when any
label differs or a probability differs by more than the tolerance; otherwise ``model.onnx`` and an
``export.json`` report (max abs difference, rows, SHA-256 of the file, inputs) are written under
``<workspace>/artifacts/edge/<name>/v<version>/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiw.errors import InvalidInputError
from aiw.governance.identity import Principal
from aiw.mlops.registry.versions import ModelRegistry
from aiw.mlops.serving.loader import load_model_version, verification_batch
from aiw.mlops.serving.predictor import OnnxPredictor, convert_to_onnx, verify_runtime

if TYPE_CHECKING:
    from aiw.workspace import Workspace

__all__ = ["ExportResult", "export_onnx"]


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and how closely ONNX matched the original."""

    model: str
    version: int
    format: str
    path: str
    sha256: str
    bytes: int
    rows_checked: int
    max_abs_diff: float
    label_mismatches: int
    tolerance: float
    inputs: list[dict[str, str]]
    classes: list[Any]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)


def _atomic_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def export_onnx(
    workspace: Workspace,
    name: str,
    version: int,
    principal: Principal,
    *,
    tolerance: float = 1e-4,
    out_dir: Path | None = None,
) -> ExportResult:
    """Export ``version`` of ``name`` to ONNX after checking it against the original.

    Args:
        workspace: The workspace.
        name: The model.
        version: The version.
        principal: Who exports (needs ``models:write``).
        tolerance: Largest probability difference allowed on the held-out rows, in (0, 0.1].
        out_dir: Where to write; default ``<workspace>/artifacts/edge/<name>/v<version>``.

    Raises:
        InvalidInputError: a bad tolerance, a model skl2onnx cannot convert, no held-out rows, or
            ONNX predictions that do not match (the export is refused and audited as a failure).
        IntegrityError: the version's files fail their checksums.
    """
    if not 0 < tolerance <= 0.1:
        raise InvalidInputError(
            f"The 'tolerance' parameter of export_onnx must be a float in (0, 0.1]. Got {tolerance}."
        )
    registry = ModelRegistry(workspace)
    resource = f"model:{name}/{version}"
    registry.require(principal, "models:write", "models.export", resource)
    loaded = load_model_version(registry, name, version, runtime="sklearn", actor=principal.name)
    folder = registry.local_folder(loaded.record)
    batch = verification_batch(folder, loaded.record.manifest, loaded.schema)
    try:
        if batch is None:
            raise InvalidInputError(
                f"Model {name!r} version {version} carries no held-out rows to check an export on",
                hint="log it with aiw.mlops.tracking.log_model and held-out X_sample rows",
            )
        data = convert_to_onnx(loaded.reference.model, loaded.schema)
        onnx = OnnxPredictor(data, loaded.schema, loaded.reference.classes)
        report = verify_runtime(onnx, loaded.reference, batch, tolerance=tolerance)
        if not report.passed:
            raise InvalidInputError(
                f"The ONNX export of {name!r} version {version} does not match the original on {report.rows} "
                f"held-out rows: {report.reason} (max abs difference of probabilities {report.max_abs_diff:.3g})",
                hint="keep serving the original, or raise the tolerance if the difference is acceptable",
            )
    except InvalidInputError as exc:
        workspace.audit.append(
            principal.name,
            "models.export",
            resource,
            outcome="failure",
            details={"format": "onnx", "reason": exc.message, "tolerance": tolerance},
        )
        raise
    target = Path(out_dir) if out_dir else workspace.path("artifacts") / "edge" / name / f"v{version}"
    target.mkdir(parents=True, exist_ok=True)
    path = target / "model.onnx"
    _atomic_bytes(path, data)
    result = ExportResult(
        model=name,
        version=version,
        format="onnx",
        path=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        rows_checked=report.rows,
        max_abs_diff=report.max_abs_diff,
        label_mismatches=report.label_mismatches,
        tolerance=tolerance,
        inputs=[{"name": c.name, "type": "string" if c.type == "string" else "float32"} for c in loaded.schema.columns],
        classes=list(loaded.reference.classes),
    )
    _atomic_bytes(target / "export.json", json.dumps(result.as_dict(), indent=2, default=str).encode())
    workspace.audit.append(
        principal.name,
        "models.export",
        resource,
        details={
            "format": "onnx",
            "path": str(path),
            "sha256": result.sha256,
            "rows_checked": report.rows,
            "max_abs_diff": report.max_abs_diff,
            "tolerance": tolerance,
        },
    )
    return result
