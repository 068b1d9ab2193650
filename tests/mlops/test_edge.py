"""Edge export to ONNX: checked against the original on held-out rows, refused when it differs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mlops_helpers import SAMPLE_ROW, People

from aiw.errors import InvalidInputError, PolicyViolation

pytestmark = pytest.mark.unit


def test_export_writes_onnx_that_matches_the_original(mlops_ws: Any, champion: str, people: People) -> None:
    import numpy as np
    import onnxruntime as ort

    from aiw.mlops.serving import ModelResolver
    from aiw.mlops.serving.edge import export_onnx

    result = export_onnx(mlops_ws, champion, 1, people.ds)
    path = Path(result.path)
    assert path.exists() and path.parent == mlops_ws.path("artifacts") / "edge" / champion / "v1"
    assert result.rows_checked == 500 and result.label_mismatches == 0 and 0 < result.max_abs_diff < 1e-4
    report = json.loads((path.parent / "export.json").read_text())
    assert report["sha256"] == result.sha256 and report["inputs"][0] == {"name": "amount", "type": "float32"}
    # The exported file, run on its own by ONNX Runtime, agrees with the original model.
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {k: np.array([[v]], dtype=object if isinstance(v, str) else np.float32) for k, v in SAMPLE_ROW.items()}
    label, proba = session.run(None, feeds)
    with ModelResolver(mlops_ws) as resolver:
        loaded, _ = resolver.resolve(champion)
    import pandas as pd

    exact = loaded.reference.model.predict_proba(pd.DataFrame([SAMPLE_ROW])[loaded.schema.names])
    assert abs(float(proba[0][1]) - float(exact[0][1])) < 1e-4 and int(label[0]) == int(exact[0].argmax())
    assert mlops_ws.audit.records(action="models.export", resource=f"model:{champion}/1")[0].outcome == "success"


def test_export_is_refused_when_onnx_differs_beyond_tolerance(
    mlops_ws: Any, champion: str, people: People, tmp_path: Path
) -> None:
    from aiw.mlops.serving.edge import export_onnx

    with pytest.raises(InvalidInputError, match=r"does not match the original on 500 held-out rows"):
        export_onnx(mlops_ws, champion, 1, people.ds, tolerance=1e-12, out_dir=tmp_path)
    assert not (tmp_path / "model.onnx").exists()
    failed = mlops_ws.audit.records(action="models.export", resource=f"model:{champion}/1", outcome="failure")
    assert failed and failed[0].details["tolerance"] == 1e-12
    with pytest.raises(InvalidInputError, match="tolerance"):
        export_onnx(mlops_ws, champion, 1, people.ds, tolerance=0.5)
    with pytest.raises(PolicyViolation):
        export_onnx(mlops_ws, champion, 1, people.approver)
