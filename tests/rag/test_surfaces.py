"""The CLI, the dashboard page and the tour step, over a real workspace."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(workspace, monkeypatch, embedder):  # type: ignore[no-untyped-def]
    """The CLI bound to the test workspace, sharing the session's model."""
    from aiw.settings import load_settings

    monkeypatch.setenv("AIW_ACTOR", "cli-test")
    load_settings.cache_clear()
    yield workspace
    load_settings.cache_clear()


def test_cli_ingest_ask_and_eval(cli_env, corpus_dir: Path, tmp_path: Path, tiny_beir: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from aiw.cli import app
    from aiw.cli._common import exit_code
    from aiw.errors import InvalidInputError, NotFoundError

    runner = CliRunner()
    first = runner.invoke(app, ["rag", "ingest", str(corpus_dir), "--collection", "cli-docs"])
    assert first.exit_code == 0, first.output
    assert "5 added" in first.output and "0 unchanged" in first.output
    again = runner.invoke(app, ["rag", "ingest", str(corpus_dir), "--collection", "cli-docs"])
    assert "5 unchanged" in again.output and "touched" not in again.output

    asked = runner.invoke(
        app, ["rag", "ask", "How long is the courtesy car available?", "--collection", "cli-docs", "--top-k", "3"]
    )
    assert asked.exit_code == 0, asked.output
    assert "14 days" in asked.output and "Sources" in asked.output
    assert "[1] Auto Insurance > Courtesy car" in asked.output
    as_json = runner.invoke(app, ["rag", "ask", "Is flood damage covered?", "-c", "cli-docs", "--json"])
    payload = json.loads(as_json.output)
    assert payload["known"] and payload["citations"] and len(payload["retrieved"]) == 5

    # Errors reach 'aiw.cli.main', which maps them to exit codes (3 not found, 2 invalid input).
    missing = runner.invoke(app, ["rag", "ask", "anything?", "-c", "nothing-here"])
    assert isinstance(missing.exception, NotFoundError) and "holds no documents" in str(missing.exception)
    assert exit_code(missing.exception) == 3
    bad = runner.invoke(app, ["rag", "ingest", str(tmp_path / "nope")])
    assert isinstance(bad.exception, InvalidInputError) and exit_code(bad.exception) == 2

    out = tmp_path / "eval.json"
    evaluated = runner.invoke(app, ["rag", "eval", str(tiny_beir), "--limit", "2", "--json", str(out)])
    assert evaluated.exit_code == 0, evaluated.output
    assert "nDCG@10" in evaluated.output and "hybrid" in evaluated.output
    result = json.loads(out.read_text())
    assert [r["mode"] for r in result["results"]] == ["hybrid", "bm25", "vector"]
    assert result["results"][0]["queries"] == 2
    listed = runner.invoke(app, ["rag", "collections"])
    assert "cli-docs" in listed.output and "eval-tiny" in listed.output


def test_dashboard_chat_page_cites_and_expands_sources(cli_env, corpus_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from streamlit.testing.v1 import AppTest

    from aiw.rag.service import RagService

    RagService(cli_env, cli_env.settings, embedder=embedder).ingest([corpus_dir], actor="test")
    page = AppTest.from_file(
        str(REPO / "src" / "aiw" / "dashboard" / "pages" / "4_Document_QA.py"), default_timeout=120
    )
    page.run()
    assert not page.exception, page.exception
    assert page.selectbox[0].value == "policies"
    page.chat_input[0].set_value("Is flood damage covered?").run()
    assert not page.exception, page.exception
    texts = " ".join(m.value for m in page.markdown)
    assert "Flood damage is excluded unless you bought the flood rider." in texts
    labels = [e.label for e in page.expander]
    assert labels and labels[0].startswith("[1] Home Insurance > Exclusions")
    assert "Flood damage is excluded" in " ".join(m.value for m in page.expander[0].markdown)
    # As a viewer, an internal document is never used.
    page.selectbox[1].set_value("viewer").run()
    page.chat_input[0].set_value("Which late claims go to the special investigations unit?").run()
    assert all("fraud.md" not in (c.value or "") for c in page.caption)


def test_tour_step_ingests_asks_and_reingests_only_the_edited_document(workspace, embedder) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console

    from aiw.rag import tour
    from aiw.tour import TourContext

    source = REPO / "src" / "aiw" / "data" / "documents"
    workspace.documents_dir.mkdir(parents=True, exist_ok=True)
    for name in ("home-faq.md", "home-exclusions.md", "travel-exclusions.md", "auto-deductibles-and-limits.md"):
        shutil.copy(source / name, workspace.documents_dir / name)
    console = Console(record=True, width=120)
    ctx = TourContext(workspace, workspace.settings, console, rows=100, seed=1)
    tour.tour_step(ctx)  # the model's weights are shared with the session's embedder
    text = console.export_text()
    assert "ingested 4 documents" in text
    for question in tour.QUESTIONS:
        assert question in text
    assert ctx.facts["rag_reingest_touched"] == ["home-faq.md"]
    assert all(a["known"] and a["citations"] for a in ctx.facts["rag_answers"])
