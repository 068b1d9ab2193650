"""Incremental ingestion: skip unchanged, replace changed, delete removed, survive a crash, audit."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiw.rag.adapters.lancedb_index import LanceDBIndex
from aiw.rag.adapters.memory_index import InMemoryIndex
from aiw.rag.chunking import Chunker
from aiw.rag.ingest import ingest
from aiw.rag.retrieval import Retriever

pytestmark = pytest.mark.unit


def test_incremental_ingest_touches_only_what_changed(corpus_dir: Path, embedder, workspace) -> None:  # type: ignore[no-untyped-def]
    index = LanceDBIndex(workspace.path("lancedb"))
    stages: list[str] = []
    first = ingest(
        [corpus_dir],
        collection="pol",
        index=index,
        embedder=embedder,
        audit=workspace.audit,
        actor="tester",
        progress=lambda stage, done, total: stages.append(stage),
    )
    assert len(first.added) == 5 and first.unchanged == 0 and first.failed == []
    assert {"load", "embed"} <= set(stages)
    chunks = index.count("pol")
    assert chunks == first.chunks_written >= 5

    again = ingest([corpus_dir], collection="pol", index=index, embedder=embedder)
    assert again.unchanged == 5 and again.touched == [] and again.chunks_written == 0

    (corpus_dir / "auto.md").write_text((corpus_dir / "auto.md").read_text() + "\n## Tyres\n\nTyres are not covered.\n")
    (corpus_dir / "notes.md").unlink()
    (corpus_dir / "empty.md").write_text("")
    (corpus_dir / "new.txt").write_text("Pet insurance\n\nDogs and cats are covered for vet bills.")
    third = ingest([corpus_dir], collection="pol", index=index, embedder=embedder, audit=workspace.audit)
    assert [Path(p).name for p in third.updated] == ["auto.md"]
    assert [Path(p).name for p in third.added] == ["new.txt"]
    assert [Path(p).name for p in third.deleted] == ["notes.md"]
    assert [Path(f.path).name for f in third.failed] == ["empty.md"] and "no text" in third.failed[0].reason
    assert third.unchanged == 3
    docs = index.documents("pol")
    assert len(docs) == 5 and all(len(d.versions) == 1 for d in docs.values())  # old versions deleted
    hits = Retriever(index, embedder).retrieve("are tyres covered", collection="pol", top_k=1)
    assert hits.chunks[0].chunk.source.endswith("auto.md") and "Tyres" in hits.chunks[0].chunk.text

    records = workspace.audit.records(action="rag.ingest")
    assert len(records) == 2 and records[0].actor == "system" and records[1].actor == "tester"
    assert records[0].details["updated"] == 1 and records[0].details["deleted"] == 1


def test_crash_mid_ingest_leaves_previous_version_usable_and_next_run_repairs(corpus_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    index = InMemoryIndex()
    chunker = Chunker(chunk_tokens=32, chunk_overlap=0)
    ingest([corpus_dir], collection="pol", index=index, embedder=embedder, chunker=chunker)
    before = {d: set(v.versions) for d, v in index.documents("pol").items()}
    home = corpus_dir / "home.md"
    home.write_text(home.read_text().replace("Flood damage is excluded", "Flood damage is now included"))
    with pytest.raises(RuntimeError, match="on purpose"):
        ingest(
            [corpus_dir], collection="pol", index=index, embedder=embedder, chunker=chunker, batch_size=1, fail_after=1
        )
    # The old, complete version of home.md is still there and still answers.
    docs = index.documents("pol")
    home_doc = next(d for d in docs.values() if d.source.endswith("home.md"))
    old_hash = next(iter(before[home_doc.doc_id]))
    assert home_doc.complete(old_hash) and len(home_doc.versions) == 2
    result = Retriever(index, embedder).retrieve("is flood damage excluded", collection="pol", top_k=3)
    assert any("Flood damage is excluded" in r.chunk.text for r in result.chunks)
    # The next run completes the new version and removes the old one.
    report = ingest([corpus_dir], collection="pol", index=index, embedder=embedder, chunker=chunker)
    assert [Path(p).name for p in report.updated] == ["home.md"]
    home_doc = index.documents("pol")[home_doc.doc_id]
    assert len(home_doc.versions) == 1 and old_hash not in home_doc.versions
    texts = " ".join(c.text for c in index.get("pol", home_doc.versions[next(iter(home_doc.versions))]))
    assert "now included" in texts and "is excluded" not in texts


def test_missing_path_fails_before_touching_the_index(embedder, tmp_path: Path, workspace) -> None:  # type: ignore[no-untyped-def]
    from aiw.errors import InvalidInputError

    index = InMemoryIndex()
    with pytest.raises(InvalidInputError, match="does not exist"):
        ingest([tmp_path / "nope"], collection="pol", index=index, embedder=embedder, audit=workspace.audit)
    assert index.collections() == []
    assert workspace.audit.records(action="rag.ingest")[0].outcome == "failure"
