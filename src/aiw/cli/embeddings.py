"""``aiw embeddings``: keep the RAG index in step with the document index, behind a drift gate."""

from __future__ import annotations

import json

import typer

from aiw.cli._common import actor, console, fail, table, workspace

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)


@app.command("refresh")
def refresh(
    collection: str = typer.Option(None, "--collection", help="The RAG collection (default rag.collection)."),
    force: bool = typer.Option(False, "--force", help="Swap even when the drift is critical (still alerted)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Re-embed documents whose hash changed, delete removed ones, gate on drift, then swap."""
    from aiw.pipelines.embedding_refresh import EmbeddingRefresher

    ws = workspace()
    with console.status("refreshing embeddings ..."):
        report = EmbeddingRefresher(ws, ws.settings, collection=collection).refresh(actor=actor(), force=force)
    if as_json:
        console.print_json(json.dumps(report.as_dict(), default=str))
    else:
        drift = report.drift
        shift = (
            "first snapshot"
            if drift is None
            else f"{drift.level}: norm shift {drift.norm_shift:.2%}, centroid cosine {drift.centroid_cosine:.4f}"
        )
        table(
            f"Embedding refresh of {report.collection!r}: {report.outcome}",
            ["what", "value"],
            [
                ("added / updated / removed", f"{len(report.added)} / {len(report.updated)} / {len(report.removed)}"),
                ("unchanged documents", report.unchanged),
                ("chunks written / deleted", f"{report.chunks_written} / {report.chunks_deleted}"),
                ("drift", shift),
                ("failed documents", "; ".join(f"{f['path']}: {f['reason']}" for f in report.failed) or "none"),
                ("seconds", f"{report.seconds:.1f}"),
            ],
        )
    if report.blocked:
        reasons = "; ".join(report.drift.reasons) if report.drift else ""
        fail(
            f"the drift gate blocked the swap (alert raised): {reasons}; "
            "inspect the change, then rerun with --force to accept it",
            1,
        )


@app.command("snapshots")
def snapshots(collection: str = typer.Option(None, "--collection", help="The RAG collection.")) -> None:
    """The collection's embedding snapshots (accepted, warned, blocked)."""
    from aiw.pipelines.embedding_refresh import EmbeddingRefresher

    ws = workspace()
    rows = EmbeddingRefresher(ws, ws.settings, collection=collection).snapshots()
    table(
        "Embedding snapshots",
        ["id", "created (UTC)", "status", "documents", "vectors", "mean norm", "drift"],
        [
            (
                r["id"],
                str(r["created_at"])[:19],
                r["status"],
                r["documents"],
                r["vectors"],
                f"{r['mean_norm']:.4f}",
                (r["metrics"].get("drift") or {}).get("level", "baseline"),
            )
            for r in rows
        ],
    )
