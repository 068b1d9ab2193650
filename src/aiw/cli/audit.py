"""``aiw audit``: list, filter and verify the hash-chained audit log."""

from __future__ import annotations

import json

import typer

from aiw.cli._common import console, fail, table, workspace

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)


@app.command("log")
def log(
    actor: str = typer.Option(None, help="Only this actor."),
    action: str = typer.Option(None, help="Only actions starting with this (e.g. keys.)."),
    resource: str = typer.Option(None, help="Only resources starting with this."),
    outcome: str = typer.Option(None, help="success | failure | denied"),
    since: str = typer.Option(None, help="ISO-8601 time; records at or after it."),
    until: str = typer.Option(None, help="ISO-8601 time; records before it."),
    limit: int = typer.Option(50, min=1, max=100_000, help="Most records shown."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
) -> None:
    """List audit records, newest first."""
    records = workspace().audit.records(
        actor=actor, action=action, resource=resource, outcome=outcome, since=since, until=until, limit=limit
    )
    if as_json:
        for r in records:
            print(json.dumps(r.as_dict(), default=str))
        return
    table(
        "Audit log",
        ["seq", "time (UTC)", "actor", "action", "resource", "outcome", "details"],
        [
            (
                r.seq,
                r.ts[:19].replace("T", " "),
                r.actor,
                r.action,
                r.resource,
                r.outcome,
                json.dumps(r.details, default=str)[:80],
            )
            for r in records
        ],
    )


@app.command()
def verify(
    anchors: str = typer.Option(None, "--anchors", help="JSON Lines file of anchors ('aiw audit anchor --out')."),
) -> None:
    """Prove the log intact, or name the first record that was edited, deleted, inserted or moved."""
    from pathlib import Path

    from aiw.governance.audit import load_anchors

    pinned = []
    if anchors:
        path = Path(anchors)
        if not path.is_file():
            fail(f"no anchors file at {path}", 2)
        pinned = load_anchors(path.read_text(encoding="utf-8"), path.name)
    report = workspace().audit.verify(pinned)
    if not report.ok:
        fail(f"audit log TAMPERED at record {report.first_bad_seq}: {report.reason}", 6)
    suffix = f", consistent with {len(pinned)} anchor(s)" if pinned else ""
    console.print(f"[green]audit log intact[/]: {report.checked} records, hash chain verified{suffix}")


@app.command()
def anchor(
    out: str = typer.Option(None, "--out", help="Append the anchor to this JSON Lines file (else print it)."),
) -> None:
    """Print (or append to a file) the chain's head: keep it outside the database, then verify with it."""
    import os
    from pathlib import Path

    taken = workspace().audit.anchor()
    if not out:
        print(taken.to_json())
        return
    path = Path(out)
    with path.open("a", encoding="utf-8") as fh:  # one line per anchor; an append never rewrites earlier ones
        fh.write(taken.to_json() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    console.print(f"anchored record {taken.seq} ({taken.hash[:12]}...) in {path}")
