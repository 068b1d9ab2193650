"""The tour's document Q&A step: ingest the policy documents, ask, change one, re-ingest.

The internal documents carry ``access: internal`` in their own front matter, which the loader
reads, so the tour needs no sidecar files; it asks as an ``analyst``, who reads only ``public``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiw.tour import TourContext
    from aiw.workspace import Workspace

__all__ = ["QUESTIONS", "tour_step"]

QUESTIONS = (
    "Is flood damage to my home covered?",
    "What is not covered by the travel insurance?",
    "How much of a windscreen replacement do I pay myself on my auto policy?",
)
"""What the tour asks about coverage and exclusions."""

_EDITED = "home-faq.md"


def _documents_folder(workspace: Workspace) -> Path:
    folder = workspace.documents_dir
    if not any(folder.glob("*.md")):
        from aiw.errors import NotFoundError

        raise NotFoundError(f"No sample documents in {folder}", hint="run the sample data step ('aiw data generate')")
    return folder


def tour_step(ctx: TourContext) -> None:
    """Ingest the sample documents, answer three questions with citations, show incremental re-ingest."""
    from aiw.rag.service import RagService

    console = ctx.console
    folder = _documents_folder(ctx.workspace)
    service = RagService(ctx.workspace, ctx.settings)
    collection = ctx.settings.rag.collection
    first = service.ingest([folder], collection=collection, actor="tour")
    console.print(
        f"  ingested {len(first.added) + len(first.updated)} documents into [bold]{collection}[/] "
        f"({first.chunks_written} chunks, {first.seconds:.1f} s; {first.unchanged} already indexed "
        f"and unchanged)"
    )
    answers = []
    for question in QUESTIONS:
        result = service.ask(question, collection=collection, role="analyst")
        answers.append(result.answer)
        console.print(f"\n  [bold]Q:[/] {question}")
        console.print(f"  [bold]A:[/] {result.answer.text}", highlight=False)
        for citation in result.answer.citations:
            console.print(f"     {citation.label()}", highlight=False, style="dim")
    edited = folder / _EDITED
    if edited.exists():
        text = edited.read_text(encoding="utf-8")
        note = (
            "\n\n## Does the policy cover garden sheds?\n\nYes. Sheds, greenhouses and garden furniture are "
            "covered under buildings cover up to €5,000 per claim, subject to the standard deductible.\n"
        )
        if note not in text:
            edited.write_text(text + note, encoding="utf-8")
        second = service.ingest([folder], collection=collection, actor="tour")
        touched = [Path(p).name for p in second.touched]
        console.print(
            f"\n  edited {_EDITED} and re-ingested: touched {touched or 'nothing'}, "
            f"{second.unchanged} unchanged, {second.chunks_written} chunks re-embedded "
            f"in {second.seconds:.1f} s"
        )
        ctx.facts["rag_reingest_touched"] = touched
    ctx.facts["rag_answers"] = [a.as_dict() for a in answers]
    ctx.facts["rag_collection"] = collection
