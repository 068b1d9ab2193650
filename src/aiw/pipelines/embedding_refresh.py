"""Embedding refresh: keep the RAG index in step with ``marts.document_index``, behind a drift gate.

One refresh:

1. reads ``marts.document_index`` (one row per document, with the SHA-256 of its content) and
   loads each document's file from ``Workspace.documents_dir`` with the RAG loader, so ids,
   titles, chunks and hashes are exactly what ``aiw rag ingest`` would produce;
2. re-embeds only the documents whose hash changed (or that the index does not hold completely),
   and plans to delete the documents gone from the mart;
3. computes the corpus the swap would produce (mean L2 norm of its chunk vectors and their
   centroid) from per-document aggregates kept beside the index, and compares it with the last
   accepted snapshot: a breach of a critical threshold **blocks** the swap (nothing is written,
   a critical alert is raised and audited), a warning proceeds and is recorded;
4. swaps: writes the new chunk versions and deletes old versions and removed documents (the RAG
   ingest path, crash-safe), then records the new snapshot.

Per-document aggregates (chunk count, sum of norms, sum of vectors, and the embedding model) live
in ``<home>/artifacts/embeddings/<collection>/doc_stats.parquet``; a different embedding model
invalidates them, so a model swap re-embeds everything and is judged by the gate.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import sqlalchemy as sa

from aiw.data._warehouse import table_exists, warehouse
from aiw.db.schema import embedding_snapshots
from aiw.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from aiw.providers.embeddings import Embedder
    from aiw.rag.documents import Document
    from aiw.rag.index import VectorIndex
    from aiw.settings import Settings
    from aiw.workspace import Workspace

__all__ = ["DriftCheck", "EmbeddingRefresher", "RefreshReport", "corpus_drift"]

Level = Literal["ok", "warning", "critical"]
Outcome = Literal["baseline", "refreshed", "warned", "unchanged", "blocked"]


@dataclass(frozen=True)
class DriftCheck:
    """The candidate corpus against the last accepted snapshot.

    Attributes:
        level: ``ok``, ``warning`` or ``critical`` (the worse of the two measures).
        norm_shift: Relative change of the mean L2 norm, ``|m - m0| / m0``.
        centroid_cosine: Cosine between the candidate and the accepted centroid (1 is identical).
        mean_norm: The candidate's mean L2 norm.
        reference_norm: The accepted snapshot's mean L2 norm.
        reasons: Which thresholds were crossed, in words.
    """

    level: Level
    norm_shift: float
    centroid_cosine: float
    mean_norm: float
    reference_norm: float
    reasons: tuple[str, ...] = ()


@dataclass
class RefreshReport:
    """What one refresh did.

    Attributes:
        collection: The RAG collection refreshed.
        outcome: ``baseline`` (first snapshot), ``refreshed``, ``warned`` (refreshed with a drift
            warning), ``unchanged`` (nothing to do) or ``blocked`` (critical drift; nothing written).
        added: Document ids new to the index.
        updated: Document ids re-embedded because their content changed.
        removed: Document ids deleted (gone from ``document_index``).
        unchanged: How many documents were left as they were.
        failed: Documents that could not be loaded, with the reason.
        chunks_written: Chunks embedded and written.
        chunks_deleted: Chunks deleted (old versions and removed documents).
        drift: The drift check, ``None`` for the first snapshot.
        snapshot_id: The snapshot row recorded (accepted, warned or blocked).
        alert_id: The alert raised for a warning or a block, when the alert system is present.
        seconds: Wall time.
    """

    collection: str
    outcome: Outcome
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    chunks_written: int = 0
    chunks_deleted: int = 0
    drift: DriftCheck | None = None
    snapshot_id: int | None = None
    alert_id: int | None = None
    seconds: float = 0.0

    @property
    def blocked(self) -> bool:
        """Whether the gate refused the swap."""
        return self.outcome == "blocked"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return asdict(self)


@dataclass
class _Stats:
    content_hash: str
    mart_hash: str
    chunks: int
    norm_sum: float
    vec_sum: np.ndarray


def corpus_drift(
    mean_norm: float,
    centroid: np.ndarray,
    ref_norm: float,
    ref_centroid: np.ndarray,
    *,
    norm_warn: float,
    norm_critical: float,
    cosine_warn: float,
    cosine_critical: float,
) -> DriftCheck:
    """Judge a candidate corpus (mean norm, centroid) against a reference one.

    Raises:
        InvalidInputError: the centroids differ in length, or a threshold pair is out of order.
    """
    if norm_warn > norm_critical:
        raise InvalidInputError(f"The norm thresholds need warn <= critical. Got {norm_warn} > {norm_critical}.")
    if cosine_warn < cosine_critical:
        raise InvalidInputError(f"The cosine thresholds need warn >= critical. Got {cosine_warn} < {cosine_critical}.")
    a, b = np.asarray(centroid, dtype=np.float64), np.asarray(ref_centroid, dtype=np.float64)
    if a.shape != b.shape:
        return DriftCheck(
            "critical",
            float("inf"),
            -1.0,
            mean_norm,
            ref_norm,
            (f"embedding dimension changed: {b.shape[-1]} -> {a.shape[-1]}",),
        )
    shift = abs(mean_norm - ref_norm) / ref_norm if ref_norm > 0 else float("inf")
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    cosine = float(a @ b / denom) if denom > 0 else -1.0
    reasons: list[str] = []
    level: Level = "ok"
    if shift >= norm_critical or cosine <= cosine_critical:
        level = "critical"
    elif shift >= norm_warn or cosine <= cosine_warn:
        level = "warning"
    if shift >= norm_warn:
        reasons.append(f"mean L2 norm moved {shift:.1%} (warn {norm_warn:.0%}, critical {norm_critical:.0%})")
    if cosine <= cosine_warn:
        reasons.append(f"centroid cosine {cosine:.4f} (warn <= {cosine_warn}, critical <= {cosine_critical})")
    return DriftCheck(level, shift, cosine, mean_norm, ref_norm, tuple(reasons))


class _Memo:
    """An embedder that remembers the vectors it made, so the swap does not embed twice."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.dimension = inner.dimension
        self.model_id = inner.model_id
        self.max_seq_length = getattr(inner, "max_seq_length", None) or getattr(
            getattr(inner, "inner", None), "max_seq_length", None
        )
        self._seen: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._seen]
        if missing:
            for text, vec in zip(missing, self.inner.embed(missing), strict=True):
                self._seen[text] = vec
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._seen[t] for t in texts]).astype(np.float32)


class EmbeddingRefresher:
    """Refreshes a RAG collection from ``marts.document_index`` behind the embedding drift gate.

    Args:
        workspace: The workspace (mart, documents folder, index, metadata database).
        settings: The platform settings (``rag`` chunking and collection, ``pipelines`` gate
            thresholds, ``alerts``).
        index: The vector index; default the one the settings name.
        embedder: The embedder; default the platform's (MiniLM behind the cache).
        collection: The collection; default ``settings.rag.collection``.
    """

    def __init__(
        self,
        workspace: Workspace,
        settings: Settings,
        *,
        index: VectorIndex | None = None,
        embedder: Embedder | None = None,
        collection: str | None = None,
    ) -> None:
        from aiw.rag.index import validate_collection

        self.workspace = workspace
        self.settings = settings
        self.collection = validate_collection(collection or settings.rag.collection)
        self._index = index
        self._embedder = embedder

    @property
    def index(self) -> VectorIndex:
        """The vector index (opened on first use)."""
        if self._index is None:
            from aiw.rag.service import open_index

            self._index = open_index(self.workspace, self.settings)
        return self._index

    @property
    def embedder(self) -> Embedder:
        """The embedder (loaded on first use)."""
        if self._embedder is None:
            from aiw.providers.embeddings import get_embedder

            self._embedder = get_embedder(self.settings.embeddings, self.workspace.path("cache"))
        return self._embedder

    @property
    def stats_path(self) -> Path:
        """Where the per-document aggregates of the accepted corpus are kept."""
        return self.workspace.path("artifacts") / "embeddings" / self.collection / "doc_stats.parquet"

    # -- the refresh -----------------------------------------------------------------------
    def refresh(self, *, actor: str = "system", force: bool = False) -> RefreshReport:
        """Re-embed what changed, gate on drift, then swap.

        Args:
            actor: Who asked, for the audit log and the snapshot.
            force: Swap even when the drift is critical (the breach is still recorded and alerted).

        Returns:
            The report; ``outcome == "blocked"`` means nothing was written.

        Raises:
            NotFoundError: ``marts.document_index`` does not exist (run ``aiw data build``).
        """
        from aiw.rag.chunking import Chunker
        from aiw.rag.ingest import _window, ingest_documents  # _window: the same chunk size ingest uses

        started = time.perf_counter()
        rag = self.settings.rag
        rows = self._document_index()
        docs, failed = self._load(rows)
        embedder = _Memo(self.embedder)
        chunker = Chunker(rag.chunk_tokens, min(rag.chunk_overlap, rag.chunk_tokens // 2))
        stored = self.index.documents(self.collection)
        previous, model_changed = self._load_stats(embedder.model_id)
        docs_root = self.workspace.documents_dir.resolve()
        current_ids = {d.id for d, _ in docs}
        gone = sorted(
            doc_id for doc_id, known in stored.items() if doc_id not in current_ids and _under(known.source, docs_root)
        )

        stats: dict[str, _Stats] = {}
        todo: list[Document] = []
        for doc, mart_hash in docs:
            known = stored.get(doc.id)
            # vectors of another model are as good as missing: everything is re-embedded
            in_index = known is not None and known.complete(doc.content_hash) and not model_changed
            prev = previous.get(doc.id)
            if in_index and prev is not None and prev.content_hash == doc.content_hash:
                stats[doc.id] = prev
                continue
            chunks = chunker.split(doc, max_tokens=_window(embedder, chunker, doc))
            vectors = embedder.embed([c.search_text for c in chunks]).astype(np.float64)
            norms = np.linalg.norm(vectors, axis=1) if len(vectors) else np.zeros(0)
            stats[doc.id] = _Stats(
                doc.content_hash,
                mart_hash,
                len(chunks),
                float(norms.sum()),
                vectors.sum(axis=0) if len(vectors) else np.zeros(embedder.dimension),
            )
            if not in_index:
                todo.append(doc)

        report = RefreshReport(self.collection, "refreshed", failed=failed)
        report.unchanged = len(docs) - len(todo)
        reference = self._accepted_snapshot()
        if not todo and not gone and reference is not None:
            report.outcome = "unchanged"
            report.seconds = time.perf_counter() - started
            return report

        n = sum(s.chunks for s in stats.values())
        if n == 0:
            raise NotFoundError(
                "marts.document_index lists no document that could be loaded",
                hint="run 'aiw data generate' and 'aiw data build'",
            )
        mean_norm = sum(s.norm_sum for s in stats.values()) / n
        centroid = np.sum([s.vec_sum for s in stats.values()], axis=0) / n
        if reference is not None:
            p = self.settings.pipelines
            report.drift = corpus_drift(
                mean_norm,
                centroid,
                reference["mean_norm"],
                reference["centroid"],
                norm_warn=p.embedding_norm_warn,
                norm_critical=p.embedding_norm_critical,
                cosine_warn=p.embedding_cosine_warn,
                cosine_critical=p.embedding_cosine_critical,
            )
        level = report.drift.level if report.drift else "ok"
        plan = {"add_or_update": [d.id for d in todo], "remove": gone}

        if level == "critical" and not force:
            report.outcome = "blocked"
            report.snapshot_id = self._snapshot("blocked", len(docs), n, mean_norm, centroid, report, actor)
            report.alert_id = self._alert("critical", report, actor, plan)
            report.seconds = time.perf_counter() - started
            return report

        existed = {d.id for d in todo if d.id in stored}
        if model_changed:
            # The index skips versions it holds complete, whatever model made them: drop them first.
            # Not atomic: a crash here leaves these documents out until the next refresh.
            report.chunks_deleted += self.index.delete_documents(self.collection, sorted(existed))
        result = ingest_documents(
            todo,
            collection=self.collection,
            index=self.index,
            embedder=embedder,
            chunker=chunker,
            batch_size=self.settings.embeddings.batch_size,
            remove=gone,
        )
        report.added = sorted(d.id for d in todo if d.id not in existed)
        report.updated = sorted(existed)
        report.removed = gone
        report.chunks_written = result.chunks_written
        report.chunks_deleted += result.chunks_deleted
        report.outcome = "baseline" if reference is None else "warned" if level != "ok" else "refreshed"
        self._save_stats(stats, embedder.model_id)
        status = {"baseline": "accepted", "refreshed": "accepted", "warned": "warned"}[report.outcome]
        report.snapshot_id = self._snapshot(status, len(docs), n, mean_norm, centroid, report, actor)
        if level != "ok":
            report.alert_id = self._alert("warning" if level == "warning" else "critical", report, actor, plan)
        report.seconds = time.perf_counter() - started
        return report

    def snapshots(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest snapshots of the collection, newest first (without centroids)."""
        with self.workspace.db.begin() as db:
            rows = (
                db.execute(
                    sa.select(embedding_snapshots)
                    .where(embedding_snapshots.c.collection == self.collection)
                    .order_by(embedding_snapshots.c.id.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [{k: (json.loads(v) if k == "metrics" else v) for k, v in r.items() if k != "centroid"} for r in rows]

    # -- internals -------------------------------------------------------------------------
    def _document_index(self) -> list[tuple[str, str, str, str]]:
        with warehouse(self.workspace) as conn:
            if not table_exists(conn, "marts.document_index"):
                raise NotFoundError(
                    "The mart marts.document_index does not exist yet", hint="run 'aiw data build' first"
                )
            rows = conn.execute(
                "SELECT doc_id, path, content_hash, coalesce(access_tags, '') FROM marts.document_index ORDER BY doc_id"
            ).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    def _load(self, rows: list[tuple[str, str, str, str]]) -> tuple[list[tuple[Document, str]], list[dict[str, str]]]:
        from aiw.rag.loaders import load_document
        from aiw.workspace import safe_join

        docs: list[tuple[Document, str]] = []
        failed: list[dict[str, str]] = []
        for doc_id, rel, mart_hash, tags in rows:
            try:
                path = safe_join(self.workspace.documents_dir, rel)
                raw = path.read_bytes()
                _sync_access_tags(path, tags)
            except (OSError, InvalidInputError) as exc:
                failed.append({"doc_id": doc_id, "path": rel, "reason": f"cannot read the file: {exc}"})
                continue
            if hashlib.sha256(raw).hexdigest() != mart_hash:
                failed.append(
                    {
                        "doc_id": doc_id,
                        "path": rel,
                        "reason": "the file differs from document_index; run 'aiw data build'",
                    }
                )
                continue
            try:
                docs.append((load_document(path, default_access_tags=self.settings.rag.default_access_tags), mart_hash))
            except InvalidInputError as exc:
                failed.append({"doc_id": doc_id, "path": rel, "reason": exc.message})
        return docs, failed

    def _load_stats(self, model_id: str) -> tuple[dict[str, _Stats], bool]:
        """The accepted corpus' per-document aggregates, and whether another model made them."""
        if not self.stats_path.exists():
            return {}, False
        import pyarrow.parquet as pq

        table = pq.read_table(self.stats_path)
        meta = table.schema.metadata or {}
        if meta.get(b"model_id", b"").decode() != model_id:
            return {}, True
        out = {}
        for row in table.to_pylist():
            out[row["doc_id"]] = _Stats(
                row["content_hash"],
                row["mart_hash"],
                int(row["chunks"]),
                float(row["norm_sum"]),
                np.asarray(row["vec_sum"], dtype=np.float64),
            )
        return out, False

    def _save_stats(self, stats: dict[str, _Stats], model_id: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            {
                "doc_id": list(stats),
                "content_hash": [s.content_hash for s in stats.values()],
                "mart_hash": [s.mart_hash for s in stats.values()],
                "chunks": [s.chunks for s in stats.values()],
                "norm_sum": [s.norm_sum for s in stats.values()],
                "vec_sum": [s.vec_sum.tolist() for s in stats.values()],
            }
        ).replace_schema_metadata({"model_id": model_id})
        self.stats_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.stats_path.with_suffix(f".{os.getpid()}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, self.stats_path)

    def _accepted_snapshot(self) -> dict[str, Any] | None:
        with self.workspace.db.begin() as db:
            row = (
                db.execute(
                    sa.select(embedding_snapshots)
                    .where(
                        embedding_snapshots.c.collection == self.collection,
                        embedding_snapshots.c.status.in_(["accepted", "warned"]),
                    )
                    .order_by(embedding_snapshots.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return {
            "mean_norm": float(row["mean_norm"]),
            "centroid": np.asarray(json.loads(str(row["centroid"]))),
            "id": int(row["id"]),
        }

    def _snapshot(
        self,
        status: str,
        documents: int,
        vectors: int,
        mean_norm: float,
        centroid: np.ndarray,
        report: RefreshReport,
        actor: str,
    ) -> int:
        metrics = {
            "drift": asdict(report.drift) if report.drift else None,
            "outcome": report.outcome,
            "added": report.added,
            "updated": report.updated,
            "removed": report.removed,
        }
        outcome: Literal["denied", "success"] = "denied" if status == "blocked" else "success"
        with self.workspace.db.begin() as db:
            snap_id = db.execute(
                embedding_snapshots.insert().values(
                    collection=self.collection,
                    created_at=datetime.now(UTC),
                    status=status,
                    documents=documents,
                    vectors=vectors,
                    dim=int(centroid.shape[-1]),
                    mean_norm=mean_norm,
                    centroid=json.dumps([round(float(x), 7) for x in centroid]),
                    metrics=json.dumps(metrics, default=str),
                    actor=actor,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            self.workspace.audit.append(
                actor,
                "embeddings.refresh",
                f"collection:{self.collection}",
                outcome,
                {
                    "snapshot": int(snap_id),
                    "status": status,
                    "outcome": report.outcome,
                    "level": report.drift.level if report.drift else "baseline",
                    "reasons": list(report.drift.reasons) if report.drift else [],
                    "added": len(report.added),
                    "updated": len(report.updated),
                    "removed": len(report.removed),
                },
                conn=db,
            )
        return int(snap_id)

    def _alert(self, severity: str, report: RefreshReport, actor: str, plan: dict[str, Any]) -> int | None:
        """Raise an alert through the monitoring capability when it is installed, else audit it."""
        drift = report.drift
        reasons = "; ".join(drift.reasons) if drift else ""
        verb = "blocked the swap" if report.blocked else "was accepted with a warning"
        message = f"Embedding drift on collection {self.collection!r} {verb}: {reasons}"
        details = {"snapshot": report.snapshot_id, "plan": plan, "drift": asdict(drift) if drift else None}
        try:
            from aiw.mlops.monitoring.alerts import AlertManager
        except ImportError:
            AlertManager = None  # type: ignore[assignment,misc]  # monitoring is not part of this build
        if AlertManager is not None:
            manager = AlertManager(self.workspace.db, self.workspace.audit, self.settings.alerts)
            alert = manager.raise_alert(
                "embedding_drift", severity, f"collection:{self.collection}", message, details, actor=actor
            )
            return int(alert.id)
        self.workspace.audit.append(
            actor,
            "embeddings.drift_alert",
            f"collection:{self.collection}",
            "failure" if report.blocked else "success",
            {"severity": severity, "message": message, **details},
        )
        return None


def _sync_access_tags(path: Path, tags: str) -> None:
    """Keep ``<file>.meta.json`` (read by the RAG loader) in step with the mart's access tags.

    A sidecar overrides the document's front matter (see :mod:`aiw.rag.loaders`), so the
    warehouse's tags win; a tag removed in the warehouse is removed from the index at the next
    refresh. An unchanged sidecar is not rewritten.
    """
    wanted = [t.strip() for t in tags.split(",") if t.strip()]
    sidecar = path.with_name(path.name + ".meta.json")
    if not wanted:
        return
    data = json.dumps({"access_tags": wanted})
    if sidecar.exists() and sidecar.read_text(encoding="utf-8") == data:
        return
    tmp = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
    tmp.write_text(data, encoding="utf-8")
    tmp.replace(sidecar)


def _under(source: str, root: Path) -> bool:
    try:
        return Path(source).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False
