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
    records = workspace().audit.records(actor=actor, action=action, resource=resource, outcome=outcome,
                                        since=since, until=until, limit=limit)
    if as_json:
        for r in records:
            print(json.dumps(r.as_dict(), default=str))
        return
    table("Audit log", ["seq", "time (UTC)", "actor", "action", "resource", "outcome", "details"],
          [(r.seq, r.ts[:19].replace("T", " "), r.actor, r.action, r.resource, r.outcome,
            json.dumps(r.details, default=str)[:80]) for r in records])


@app.command()
def verify() -> None:
    """Prove the log intact, or name the first record that was edited, deleted, inserted or moved."""
    report = workspace().audit.verify()
    if not report.ok:
        fail(f"audit log TAMPERED at record {report.first_bad_seq}: {report.reason}", 6)
    console.print(f"[green]audit log intact[/]: {report.checked} records, hash chain verified")
