"""Every index adapter passes the same contract (aiw.testing.index_contract)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aiw.rag.adapters.chroma_index import ChromaIndex
from aiw.rag.adapters.lancedb_index import LanceDBIndex
from aiw.rag.adapters.memory_index import InMemoryIndex
from aiw.rag.adapters.qdrant_index import QdrantIndex
from aiw.rag.index import VectorIndex
from aiw.testing.index_contract import VectorIndexContract

pytestmark = pytest.mark.unit


class TestInMemoryIndex(VectorIndexContract):
    @pytest.fixture
    def index(self) -> VectorIndex:
        return InMemoryIndex()


class TestLanceDBIndex(VectorIndexContract):
    @pytest.fixture
    def index(self, tmp_path: Path) -> Iterator[VectorIndex]:
        idx = LanceDBIndex(tmp_path / "lancedb")
        yield idx
        idx.close()


class TestQdrantLocalIndex(VectorIndexContract):
    @pytest.fixture
    def index(self, tmp_path: Path) -> Iterator[VectorIndex]:
        idx = QdrantIndex(path=tmp_path / "qdrant")
        yield idx
        idx.close()


@pytest.mark.integration
class TestChromaServerIndex(VectorIndexContract):
    @pytest.fixture
    def index(self, chroma_url: str) -> Iterator[VectorIndex]:
        idx = ChromaIndex(url=chroma_url)
        yield idx
        idx.close()


def test_adapters_are_registered_and_satisfy_the_protocol(tmp_path: Path) -> None:
    from aiw._registry import resolve

    assert resolve("index", "memory") is InMemoryIndex
    assert resolve("index", "lancedb") is LanceDBIndex
    assert resolve("index", "chroma") is ChromaIndex
    assert resolve("index", "qdrant") is QdrantIndex
    assert isinstance(InMemoryIndex(), VectorIndex)
    assert isinstance(LanceDBIndex(tmp_path / "l"), VectorIndex)
