"""Shared, expensive fixtures of the data platform tests: generated and built workspaces.

Generating and building take seconds, so one built workspace is shared per session; a test that
changes data works on a copy (:func:`clone`), never on the shared one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

BUILT_ROWS = 6000
BIG_ROWS = 60_000


def _settings(home: Path):  # type: ignore[no-untyped-def]
    from aiw.settings import build_settings

    return build_settings(home=home)


@pytest.fixture(scope="session")
def _clean_env() -> Iterator[None]:
    """Session fixtures must not see the developer's AIW_* variables."""
    with pytest.MonkeyPatch.context() as mp:
        for var in list(os.environ):
            if var.startswith("AIW_") and not var.startswith("AIW_TEST_"):
                mp.delenv(var)
        yield


@pytest.fixture(scope="session")
def built_ws(tmp_path_factory: pytest.TempPathFactory, _clean_env: None):  # type: ignore[no-untyped-def]
    """A workspace with 6,000 sample claims (ending today) and the dbt project built: read only."""
    from aiw.data.dbt_runner import DbtRunner
    from aiw.data.sample import generate
    from aiw.workspace import Workspace

    ws = Workspace(_settings(tmp_path_factory.mktemp("built") / "ws")).init()
    generate(ws, rows=BUILT_ROWS, seed=11)
    result = DbtRunner(ws).build(actor="tests")
    assert result.success, [(n.name, n.status, n.message) for n in result.failures] or result.error
    ws.build_result = result  # type: ignore[attr-defined]
    yield ws
    ws.db.dispose()


@pytest.fixture(scope="session")
def big_ws(tmp_path_factory: pytest.TempPathFactory, _clean_env: None):  # type: ignore[no-untyped-def]
    """A workspace with 60,000 raw sample claims (about 55 a day), no dbt build: read only."""
    from aiw.data.sample import generate
    from aiw.workspace import Workspace

    ws = Workspace(_settings(tmp_path_factory.mktemp("big") / "ws")).init()
    generate(ws, rows=BIG_ROWS, seed=5)
    yield ws
    ws.db.dispose()


@pytest.fixture
def clone(tmp_path: Path, _clean_env: None):  # type: ignore[no-untyped-def]
    """``clone(ws)``: an independent copy of a shared workspace (warehouse, metadata, artifacts)."""
    from aiw.workspace import Workspace

    made = []

    def _clone(ws, name: str = "copy"):  # type: ignore[no-untyped-def]
        ws.db.dispose()
        target = tmp_path / name
        shutil.copytree(ws.root, target, symlinks=True)
        copy = Workspace(_settings(target)).ensure()
        made.append(copy)
        return copy

    yield _clone
    for ws in made:
        ws.db.dispose()


DOCS_KEPT = 4


def _trim_documents(ws) -> None:  # type: ignore[no-untyped-def]
    from aiw.data._warehouse import warehouse
    from aiw.data.dbt_runner import DbtRunner

    with warehouse(ws, read_only=False) as conn:
        conn.execute(
            f"DELETE FROM main.documents WHERE doc_id NOT IN "
            f"(SELECT doc_id FROM main.documents ORDER BY length(content), doc_id LIMIT {DOCS_KEPT})"
        )
    assert DbtRunner(ws).build(select=["document_index"], freshness=False, actor="tests").success


@pytest.fixture(scope="session")
def docs_ws(built_ws, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A copy of ``built_ws`` keeping 4 documents, its RAG collection embedded once (baseline).

    Embedding the whole sample corpus takes minutes on a busy 2-core machine; 4 documents keep
    the tests quick. Read only: use ``docs_copy`` to change things.
    """
    from aiw.pipelines.embedding_refresh import EmbeddingRefresher
    from aiw.workspace import Workspace

    built_ws.db.dispose()
    target = tmp_path_factory.mktemp("docs") / "ws"
    shutil.copytree(built_ws.root, target, symlinks=True)
    ws = Workspace(_settings(target)).ensure()
    _trim_documents(ws)
    ws.baseline = EmbeddingRefresher(ws, ws.settings).refresh(actor="tests")  # type: ignore[attr-defined]
    yield ws
    ws.db.dispose()


@pytest.fixture
def docs_copy(docs_ws, built_ws, clone):  # type: ignore[no-untyped-def]
    """A fresh workspace like ``docs_ws`` (4 documents, baseline snapshot), yours to change.

    The RAG index names documents by their absolute path, so a copied index would not recognise
    its documents at the new path: the copy is rebuilt from ``built_ws`` instead, with the
    embedding cache of ``docs_ws`` so that nothing is embedded twice.
    """
    from aiw.pipelines.embedding_refresh import EmbeddingRefresher

    ws = clone(built_ws, "docs-copy")
    _trim_documents(ws)
    shutil.rmtree(ws.path("cache"))
    shutil.copytree(docs_ws.path("cache"), ws.path("cache"))
    ws.baseline = EmbeddingRefresher(ws, ws.settings).refresh(actor="tests")  # type: ignore[attr-defined]
    assert ws.baseline.outcome == "baseline"
    return ws
