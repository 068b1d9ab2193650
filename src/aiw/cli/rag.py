"""``aiw rag``: ingest documents, ask questions with citations, evaluate retrieval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from aiw.cli._common import actor, console, progress, table, workspace

if TYPE_CHECKING:
    from aiw.rag.service import RagService

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)


def _service() -> RagService:
    from aiw.rag.service import RagService

    ws = workspace()
    return RagService(ws, ws.settings)


@app.command("ingest")
def ingest_cmd(
    paths: list[Path] = typer.Argument(..., help="Files or folders (Markdown, text, HTML, PDF)."),
    collection: str = typer.Option(None, "--collection", "-c", help="Target collection (default: rag.collection)."),
) -> None:
    """Ingest documents incrementally: unchanged files are skipped, changed ones replaced, removed ones deleted."""
    service = _service()
    with progress() as bar:
        task = bar.add_task("loading", total=None)

        def report(stage: str, done: int, total: int) -> None:
            bar.update(
                task,
                description={"load": "loading", "embed": "embedding"}.get(stage, stage),
                completed=done,
                total=total,
            )

        result = service.ingest([str(p) for p in paths], collection=collection, actor=actor(), progress=report)
    console.print(
        f"Collection [bold]{result.collection}[/]: {len(result.added)} added, {len(result.updated)} updated, "
        f"{result.unchanged} unchanged, {len(result.deleted)} deleted; {result.chunks_written} chunks "
        f"written in {result.seconds:.1f} s."
    )
    for path in result.touched:
        console.print(f"  touched {path}", highlight=False)
    for failure in result.failed:
        console.print(f"  [yellow]skipped[/] {failure.path}: {failure.reason}", highlight=False)


@app.command("ask")
def ask_cmd(
    question: str = typer.Argument(..., help="The question."),
    collection: str = typer.Option(None, "--collection", "-c", help="Collection to ask (default: rag.collection)."),
    top_k: int = typer.Option(None, "--top-k", "-k", min=1, max=100, help="Chunks given to the answerer."),
    role: str = typer.Option(None, "--role", help="Answer only from documents this role may read."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer, citations and chunks as JSON."),
) -> None:
    """Answer a question from the documents, with numbered citations."""
    result = _service().ask(question, collection=collection, top_k=top_k, role=role)
    if as_json:
        print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    console.print(result.answer.text, highlight=False)
    if result.answer.citations:
        console.print("\n[bold]Sources[/]")
        for citation in result.answer.citations:
            console.print(f"  {citation.label()}", highlight=False)


@app.command("eval")
def eval_cmd(
    folder: Path = typer.Argument(..., help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv."),
    limit: int = typer.Option(None, "--limit", min=1, help="Score only the first N judged queries."),
    json_out: Path = typer.Option(None, "--json", help="Also write the results to this JSON file."),
) -> None:
    """Score BM25, vector and hybrid retrieval: nDCG@10, Recall@100, MRR@10, latency."""
    service = _service()
    with progress() as bar:
        task = bar.add_task("indexing", total=None)

        def report(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage.replace("query:", "querying "), completed=done, total=total)

        result = service.eval(folder, limit=limit, progress=report)
    table(
        f"{result.dataset}: {result.documents} documents, {result.results[0].queries} queries",
        ["mode", "nDCG@10", "Recall@100", "MRR@10", "p50 ms", "p95 ms"],
        result.rows(),
    )
    if json_out:
        tmp = json_out.with_name(json_out.name + ".tmp")
        tmp.write_text(json.dumps(result.as_dict(), indent=2))
        tmp.replace(json_out)
        console.print(f"Wrote {json_out}")


@app.command("collections")
def collections_cmd() -> None:
    """List collections with their document and chunk counts."""
    rows = _service().collections()
    table(
        "Collections",
        ["collection", "documents", "chunks"],
        [(r["collection"], r["documents"], r["chunks"]) for r in rows],
    )
