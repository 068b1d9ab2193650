"""Access tags and metadata from YAML front matter: parsing, malformed blocks, enforcement at query time."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from aiw.data.sample import INTERNAL_DOCUMENTS
from aiw.errors import InvalidInputError
from aiw.rag.adapters.memory_index import InMemoryIndex
from aiw.rag.ingest import ingest
from aiw.rag.loaders import load_document, parse_front_matter
from aiw.rag.retrieval import Retriever
from aiw.settings import RagSettings

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "src" / "aiw" / "data" / "documents"
INTERNAL = {f"{doc_id}.md" for doc_id in INTERNAL_DOCUMENTS}


@pytest.mark.unit
def test_yaml_front_matter_values_become_metadata_strings() -> None:
    fields, body = parse_front_matter(
        "\ufeff---\ntitle: Fleet Policy\naccess:\n  - internal\n  - Finance\nTags: [fleet, motor]\n"
        "effective: 2025-01-31\nreviewed: true\nversion: 3\nowner: {team: motor, site: Leeds}\nnotes:\n...\n"
        "# Fleet\n\nBody.\n"
    )
    assert fields == {
        "title": "Fleet Policy",
        "access": "internal, Finance",
        "tags": "fleet, motor",
        "effective": "2025-01-31",
        "reviewed": "true",
        "version": "3",
        "owner": '{"site": "Leeds", "team": "motor"}',
        "notes": "",
    }
    assert body == "# Fleet\n\nBody."
    assert parse_front_matter("# No block\n\n---\nnot: front matter\n---\n") == (
        {},
        "# No block\n\n---\nnot: front matter\n---\n",
    )
    assert parse_front_matter("---\n---\nbody") == ({}, "body")


@pytest.mark.unit
def test_front_matter_is_metadata_not_chunk_text(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "fleet.md"
    path.write_text(
        "---\ntitle: Fleet Policy\naccess: [internal, finance]\ntags: [fleet]\nowner: Motor\n---\n"
        "# Fleet insurance\n\nEach vehicle carries a €250 deductible.\n"
    )
    doc = load_document(path)
    assert doc.title == "Fleet Policy" and doc.access_tags == ("internal", "finance")
    # 'tags' names topics in front matter: kept as metadata, never read as access tags.
    assert doc.metadata == {"tags": "fleet", "owner": "Motor"}
    assert doc.text.startswith("# Fleet insurance") and "---" not in doc.text and "owner" not in doc.text
    index = InMemoryIndex()
    ingest([path], collection="front", index=index, embedder=embedder)
    (chunk,) = index.get(
        "front", [c for d in index.documents("front").values() for ids in d.versions.values() for c in ids]
    )
    assert "Motor" not in chunk.text and "finance" not in chunk.search_text
    assert chunk.fields()["owner"] == ["Motor"] and chunk.access_tags == ("internal", "finance")


@pytest.mark.unit
def test_a_sidecar_still_overrides_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text("---\naccess: internal\nowner: claims\n---\n# Doc\n\nText.\n")
    (tmp_path / "doc.md.meta.json").write_text('{"access_tags": ["restricted"]}')
    doc = load_document(path)
    assert doc.access_tags == ("restricted",) and doc.metadata == {"owner": "claims"}


MALFORMED = {
    "unclosed.md": ("---\naccess: internal\n# Secret\n\nUnclosed front matter.\n", "is not closed"),
    "bad-yaml.md": ("---\naccess: [internal\n---\n# Secret\n\nBroken list.\n", "not valid YAML on line"),
    "not-mapping.md": ("---\n- internal\n- finance\n---\n# Secret\n\nA list, not keys.\n", "a YAML mapping"),
    "empty-access.md": ("---\naccess:\n---\n# Secret\n\nNo tags named.\n", "'access' names no access tags"),
    "bad-tag.md": ("---\naccess: top secret!\n---\n# Secret\n\nBad tag.\n", "Invalid access tags"),
}


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_front_matter_names_the_file(tmp_path: Path, name: str) -> None:
    text, reason = MALFORMED[name]
    (tmp_path / name).write_text(text)
    with pytest.raises(InvalidInputError, match=reason) as info:
        load_document(tmp_path / name)
    assert name in info.value.message


@pytest.mark.unit
def test_ingest_skips_malformed_front_matter_and_goes_on(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, (text, _) in MALFORMED.items():
        (folder / name).write_text(text)
    (folder / "plain.md").write_text("# Pet cover\n\nDogs and cats are covered for vet bills after 14 days.\n")
    (folder / "staff.md").write_text("---\naccess: internal\n---\n# Staff rota\n\nAdjusters rotate weekly.\n")
    index = InMemoryIndex()
    report = ingest([folder], collection="front", index=index, embedder=embedder)
    assert sorted(Path(p).name for p in report.added) == ["plain.md", "staff.md"]
    failed = {Path(f.path).name: f.reason for f in report.failed}
    assert sorted(failed) == sorted(MALFORMED)
    for name, (_, reason) in MALFORMED.items():
        assert name in failed[name] and re.search(reason, failed[name]), failed[name]
    # A document without front matter is public; the skipped files left nothing in the index.
    seen = Retriever(index, embedder).retrieve("are dogs covered?", collection="front", role="viewer", top_k=5)
    assert [Path(r.chunk.source).name for r in seen.chunks] == ["plain.md"]
    assert all(
        "Secret" not in c.title
        for d in index.documents("front").values()
        for c in index.get("front", [i for ids in d.versions.values() for i in ids])
    )


@pytest.mark.unit
def test_packaged_sample_documents_carry_their_access_tags(tmp_path: Path) -> None:
    for path in sorted(SAMPLES.glob("*.md")):
        copy = Path(shutil.copy(path, tmp_path / path.name))  # no sidecar beside the copy
        doc = load_document(copy)
        assert doc.access_tags == (("internal",) if path.name in INTERNAL else ("public",)), path.name
        assert doc.text.startswith("# ") and not doc.text.startswith("---"), path.name
        if path.name in INTERNAL:
            assert doc.metadata.get("owner") and doc.title.endswith("(Internal)")


@pytest.mark.integration
def test_keys_only_see_the_sample_documents_their_role_may_read(workspace, embedder) -> None:  # type: ignore[no-untyped-def]
    """The packaged documents, front matter only (no sidecar, no catalogue), over the REST API and LanceDB."""
    from fastapi.testclient import TestClient

    from aiw.api import create_app
    from aiw.rag.service import RagService

    workspace.documents_dir.mkdir(parents=True, exist_ok=True)
    for name in (*sorted(INTERNAL), "home-exclusions.md", "auto-claims-process.md", "general-complaints-procedure.md"):
        shutil.copy(SAMPLES / name, workspace.documents_dir / name)
    service = RagService(workspace, workspace.settings, embedder=embedder)
    report = service.ingest([workspace.documents_dir], actor="test")
    assert len(report.added) == 6 and report.failed == []
    assert not list(workspace.documents_dir.glob("*.meta.json"))
    keys = {
        role: workspace.keys.create(f"{role}-key", role, actor="test")[1]
        for role in ("viewer", "analyst", "data_scientist")
    }
    app = create_app(workspace.settings)
    app.state.rag_service = service
    question = {
        "question": "When must adjusters refer a claim to the Special Investigations Unit for fraud?",
        "top_k": 10,
    }
    with TestClient(app) as client:
        seen: dict[str, set[str]] = {}
        for role, key in keys.items():
            response = client.post("/v1/rag/query", json=question, headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200, response.text
            seen[role] = {Path(r["source"]).name for r in response.json()["retrieved"]}
    for role in ("viewer", "analyst"):
        assert seen[role] and not seen[role] & INTERNAL, (role, seen[role])
    assert "general-fraud-policy.md" in seen["data_scientist"]
    # A tag no role holds by default hides a document from all of them until a role is given it.
    (workspace.documents_dir / "finance.md").write_text(
        "---\naccess: finance\n---\n# Reserving\n\nFraud referral reserves are set at €5,000 per claim.\n"
    )
    service.ingest([workspace.documents_dir], actor="test")
    ask = "What reserve is set for a fraud referral?"
    for role in ("viewer", "data_scientist", "admin"):
        hits = service.retriever.retrieve(ask, collection=workspace.settings.rag.collection, role=role, top_k=20)
        assert all(not r.chunk.source.endswith("finance.md") for r in hits.chunks), role
    custom = Retriever(service.index, embedder, RagSettings(role_tags={"actuary": ["finance"]}))
    only = custom.retrieve(ask, collection=workspace.settings.rag.collection, role="actuary", top_k=20)
    assert [Path(r.chunk.source).name for r in only.chunks] == ["finance.md"]
