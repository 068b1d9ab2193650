"""``aiw data build|docs|check``: the dbt project and the quality gates.

Registered on the ``data`` group by :func:`register` (called from :mod:`aiw.cli.data`), so the
sample-data commands and these live in one group while their code stays apart.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from aiw.cli._common import actor, console, err_console, fail, table, workspace

if TYPE_CHECKING:
    from aiw.data.dbt_runner import BuildEvent

__all__ = ["register"]

_STYLE = {
    "pass": "green",
    "success": "green",
    "no-op": "green",
    "warn": "yellow",
    "skipped": "dim",
    "fail": "red",
    "error": "red",
    "runtime error": "red",
}


def _styled(status: str) -> str:
    colour = _STYLE.get(status, "white")
    return f"[{colour}]{status}[/]"


def build(
    select: list[str] = typer.Option(None, "--select", "-s", help="dbt selector(s), e.g. marts or +claim_features."),
    freshness: bool = typer.Option(True, "--freshness/--no-freshness", help="Check source freshness first."),
    threads: int = typer.Option(None, "--threads", min=1, max=64, help="dbt threads (default 2)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run the dbt project (sources, staging, marts and their tests) against the workspace warehouse."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from aiw.data.dbt_runner import DbtRunner

    runner = DbtRunner(workspace(), threads=threads)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=as_json or not err_console.is_terminal,
    ) as bar:
        task = bar.add_task("dbt", total=None)

        def on_event(event: BuildEvent) -> None:
            if event.phase == "start":
                if event.index == 1:
                    bar.update(task, completed=0, total=event.total)
                bar.update(task, description=f"{event.kind} {event.name}")
            else:
                bar.advance(task)

        result = runner.build(select=select or None, freshness=freshness, progress=on_event, actor=actor())
    if as_json:
        console.print_json(json.dumps(result.as_dict()))
    else:
        table(
            f"dbt build ({result.seconds:.1f} s)",
            ["kind", "name", "status", "seconds", "message"],
            [(n.kind, n.name, _styled(n.status), f"{n.seconds:.2f}", n.message) for n in result.nodes],
        )
        counts = ", ".join(f"{v} {k}" for k, v in sorted(result.counts().items()))
        console.print(f"{len(result.nodes)} nodes: {counts}. Artifacts in {result.target_path}")
    if not result.success:
        what = "; ".join(f"{n.kind} {n.name}: {n.status} ({n.message})" for n in result.failures[:5])
        more = f" and {len(result.failures) - 5} more" if len(result.failures) > 5 else ""
        fail(f"dbt build failed: {result.error or what}{more}", 1)


def docs() -> None:
    """Generate the dbt docs (catalog and lineage) as one HTML file under the workspace."""
    from aiw.data.dbt_runner import DbtRunner

    ws = workspace()
    path = DbtRunner(ws).docs()
    ws.audit.append(actor(), "data.docs", "dbt:docs", "success", {"path": str(path)})
    console.print(f"dbt docs written to [bold]{path}[/] (open it in a browser; no server needed)")


def check(
    as_of: str = typer.Option(None, "--as-of", help="Judge as of this UTC date or time (default now)."),
    accept_schema: bool = typer.Option(
        False, "--accept-schema", help="Accept the current columns as the baseline, then check."
    ),
    tables: list[str] = typer.Option(None, "--table", "-t", help="With --accept-schema: only these tables."),
    history: bool = typer.Option(False, "--history", help="List the latest check runs instead."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Run the quality gates (volume, freshness, schema); exit non-zero when any fails."""
    from aiw.data.quality import QualityGates
    from aiw.errors import InvalidInputError

    ws = workspace()
    gates = QualityGates(ws, ws.settings.quality)
    if history:
        runs = gates.runs()
        table(
            "Data check runs",
            ["run", "started (UTC)", "status", "checks", "failures", "warnings", "actor"],
            [
                (
                    r["id"][:12],
                    str(r["started_at"])[:19],
                    _styled(r["status"]),
                    r["checks"],
                    r["failures"],
                    r["warnings"],
                    r["actor"],
                )
                for r in runs
            ],
        )
        return
    moment = None
    if as_of:
        try:
            moment = datetime.fromisoformat(as_of)
        except ValueError as exc:
            raise InvalidInputError(
                f"--as-of must be an ISO date or time (2026-01-31 or 2026-01-31T06:00). Got {as_of!r}."
            ) from exc
    if accept_schema:
        accepted = gates.accept_schema(tables or None, actor=actor(), reason="aiw data check --accept-schema")
        console.print(f"schema accepted for {', '.join(accepted) if accepted else 'no table (nothing changed)'}")
    report = gates.run(as_of=moment, actor=actor())
    if as_json:
        console.print_json(json.dumps(report.as_dict(), default=str))
    else:
        rows: list[tuple[Any, ...]] = [
            (r.table, r.check, _styled(r.status), r.observed, r.expected) for r in report.results
        ]
        table(
            f"Quality gates (as of {report.as_of:%Y-%m-%d %H:%M} UTC)",
            ["table", "check", "status", "observed", "expected"],
            rows,
        )
        console.print(
            f"{len(report.results)} checks: {len(report.failures)} failed, "
            f"{len(report.warnings)} warned. Run {report.run_id}"
        )
    if report.failures:
        fail(
            "; ".join(f"{r.table} {r.check}: observed {r.observed}, expected {r.expected}" for r in report.failures), 1
        )


def register(app: typer.Typer) -> None:
    """Add ``build``, ``docs`` and ``check`` to the ``data`` group."""
    app.command("build")(build)
    app.command("docs")(docs)
    app.command("check")(check)
