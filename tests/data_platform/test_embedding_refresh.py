"""Embedding refresh: only changed documents are re-embedded, removed ones deleted, and the drift
gate warns (and proceeds) or blocks (and changes nothing) before the swap."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import pytest
import sqlalchemy as sa

from aiw.pipelines.embedding_refresh import EmbeddingRefresher, corpus_drift

pytestmark = pytest.mark.unit


class HashingEmbedder:
    """A second, real embedding model: hashed bag of words, L2-normalised (another vector space)."""

    dimension = 384
    model_id = "test-hashing-bow"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def _docs(ws):  # type: ignore[no-untyped-def]
    from aiw.data._warehouse import warehouse

    with warehouse(ws) as conn:
        return conn.execute("SELECT doc_id, path, content FROM main.documents ORDER BY doc_id").fetchall()


def _edit(ws, path: str, content: str | None) -> None:  # type: ignore[no-untyped-def]
    """Change (or, with None, remove) one document upstream, then rebuild the document index."""
    from aiw.data._warehouse import warehouse
    from aiw.data.dbt_runner import DbtRunner

    file = ws.documents_dir / path
    with warehouse(ws, read_only=False) as conn:
        if content is None:
            conn.execute("DELETE FROM main.documents WHERE path = ?", [path])
            file.unlink()
        else:
            conn.execute(
                "UPDATE main.documents SET content = ?, content_hash = sha256(?) WHERE path = ?",
                [content, content, path],
            )
            file.write_text(content, encoding="utf-8")
    assert DbtRunner(ws).build(select=["document_index"], freshness=False, actor="tests").success


def test_baseline_then_unchanged(docs_copy) -> None:  # type: ignore[no-untyped-def]
    ws = docs_copy
    base = ws.baseline
    assert base.outcome == "baseline" and len(base.added) == 4 and base.chunks_written > 4
    assert base.drift is None and base.snapshot_id is not None
    refresher = EmbeddingRefresher(ws, ws.settings)
    again = refresher.refresh(actor="tests")
    assert again.outcome == "unchanged" and again.unchanged == 4 and again.chunks_written == 0
    assert [s["status"] for s in refresher.snapshots()] == ["accepted"]


def test_only_changed_documents_are_reembedded_and_removed_ones_deleted(docs_copy) -> None:  # type: ignore[no-untyped-def]
    ws = docs_copy
    refresher = EmbeddingRefresher(ws, ws.settings)
    before = refresher.index.documents(refresher.collection)
    (_, changed_path, content), (_, gone_path, _) = _docs(ws)[:2]
    _edit(ws, changed_path, content + "\n\n## Update\n\nClaims must now be reported within 30 days of the loss.\n")
    _edit(ws, gone_path, None)
    report = refresher.refresh(actor="tests")
    assert report.outcome in ("refreshed", "warned")
    changed_id = next(d for d, k in before.items() if k.source.endswith(changed_path))
    gone_id = next(d for d, k in before.items() if k.source.endswith(gone_path))
    assert report.updated == [changed_id] and report.removed == [gone_id] and report.added == []
    assert report.unchanged == 2
    after = refresher.index.documents(refresher.collection)
    assert gone_id not in after
    assert len(after[changed_id].versions) == 1  # the old version's chunks were swapped out
    assert report.chunks_written == sum(len(v) for v in after[changed_id].versions.values())
    assert report.drift is not None and report.drift.level in ("ok", "warning")


def test_a_warning_proceeds_and_is_recorded(docs_copy) -> None:  # type: ignore[no-untyped-def]
    ws = docs_copy
    tight = ws.settings.model_copy(
        update={
            "pipelines": ws.settings.pipelines.model_copy(
                update={"embedding_cosine_warn": 0.999999999, "embedding_norm_warn": 1e-12}
            )
        }
    )
    refresher = EmbeddingRefresher(ws, tight)
    (_, path, content) = _docs(ws)[0]
    _edit(ws, path, content + "\n\nA new paragraph about storm damage to the roof and the garden fence.\n")
    report = refresher.refresh(actor="tests")
    assert report.outcome == "warned" and report.drift is not None and report.drift.level == "warning"
    assert report.updated  # it proceeded
    assert refresher.snapshots()[0]["status"] == "warned"
    from aiw.mlops.monitoring.alerts import AlertManager

    alerts = AlertManager(ws.db, ws.audit, ws.settings.alerts).list_alerts(subject="collection:policies")
    assert alerts and alerts[0].severity == "warning" and alerts[0].id == report.alert_id


def test_a_critical_drift_blocks_the_swap(docs_copy) -> None:  # type: ignore[no-untyped-def]
    """A model swap moves every vector: the gate refuses it and the index stays as it was."""
    ws = docs_copy
    index_before = EmbeddingRefresher(ws, ws.settings).index.documents("policies")
    swapped = EmbeddingRefresher(ws, ws.settings, embedder=HashingEmbedder())
    report = swapped.refresh(actor="tests")
    assert report.blocked and report.drift is not None and report.drift.level == "critical"
    assert report.drift.centroid_cosine < 0.5 and report.chunks_written == 0
    assert {k: v.versions for k, v in swapped.index.documents("policies").items()} == {
        k: v.versions for k, v in index_before.items()
    }
    assert swapped.snapshots()[0]["status"] == "blocked"
    from aiw.mlops.monitoring.alerts import AlertManager

    alert = AlertManager(ws.db, ws.audit, ws.settings.alerts).list_alerts(subject="collection:policies")[0]
    assert alert.severity == "critical" and "blocked the swap" in alert.message
    denied = [r for r in ws.audit.records(limit=10) if r.action == "embeddings.refresh"]
    assert denied[0].outcome == "denied"
    # the last accepted snapshot is still the reference: a second try is blocked again
    assert swapped.refresh(actor="tests").blocked
    forced = swapped.refresh(actor="tests", force=True)
    assert forced.outcome == "warned" or forced.drift.level == "critical"  # type: ignore[union-attr]
    assert forced.chunks_written > 0


def test_corpus_drift_math() -> None:
    ref = np.ones(4)
    assert (
        corpus_drift(
            1.0, ref, 1.0, ref, norm_warn=0.05, norm_critical=0.15, cosine_warn=0.98, cosine_critical=0.9
        ).level
        == "ok"
    )
    warn = corpus_drift(1.08, ref, 1.0, ref, norm_warn=0.05, norm_critical=0.15, cosine_warn=0.98, cosine_critical=0.9)
    assert warn.level == "warning" and warn.norm_shift == pytest.approx(0.08)
    crit = corpus_drift(
        1.0,
        np.array([1, -1, 1, -1.0]),
        1.0,
        ref,
        norm_warn=0.05,
        norm_critical=0.15,
        cosine_warn=0.98,
        cosine_critical=0.9,
    )
    assert crit.level == "critical" and crit.centroid_cosine == pytest.approx(0.0)
    assert (
        corpus_drift(
            1.0, np.ones(3), 1.0, ref, norm_warn=0.05, norm_critical=0.15, cosine_warn=0.98, cosine_critical=0.9
        ).level
        == "critical"
    )  # another dimension


def test_mart_and_file_out_of_step_is_reported(docs_copy) -> None:  # type: ignore[no-untyped-def]
    ws = docs_copy
    (_, path, _) = _docs(ws)[0]
    (ws.documents_dir / path).write_text("edited by hand, not through the warehouse", encoding="utf-8")
    report = EmbeddingRefresher(ws, ws.settings).refresh(actor="tests")
    assert [f["path"] for f in report.failed] == [path] and "aiw data build" in report.failed[0]["reason"]
    with ws.db.begin() as db:
        assert db.execute(sa.text("SELECT count(*) FROM embedding_snapshots")).scalar() >= 1
