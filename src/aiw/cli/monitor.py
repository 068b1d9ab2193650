"""``aiw monitor``: drift reports (JSON + HTML), alerts, and webhook delivery."""

from __future__ import annotations

import json

import typer

from aiw.cli._common import actor, console, fail, table, workspace

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)


def _methods(pairs: list[str] | None) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for pair in pairs or []:
        col, sep, method = pair.partition("=")
        if not sep or not col or not method:
            fail(f"--method takes COLUMN=METHOD (e.g. amount=psi); got {pair!r}", 2)
        out[col.strip()] = method.strip()
    return out or None


@app.command()
def drift(
    model: str = typer.Option(None, "--model", help="Check a model's served traffic (features and prediction)."),
    reference: str = typer.Option(
        None,
        "--reference",
        help="Reference warehouse table (or, with --model, the training table to compare traffic with).",
    ),
    current: str = typer.Option(None, "--current", help="Current warehouse table."),
    hours: float = typer.Option(
        None,
        "--hours",
        min=0.001,
        help="Traffic window length for --model (default: settings.monitoring.window_hours).",
    ),
    columns: str = typer.Option(None, "--columns", help="Comma-separated columns to monitor (tables only)."),
    method: list[str] = typer.Option(
        None, "--method", help="COLUMN=METHOD override: ks, wasserstein, chisquare, z, jensenshannon, psi. Repeatable."
    ),
    drift_share: float = typer.Option(
        None, "--drift-share", min=0.0001, max=1.0, help="Share of drifted columns that is dataset drift."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the whole result as JSON."),
    deliver: bool = typer.Option(True, "--deliver/--no-deliver", help="Try queued webhooks once afterwards."),
) -> None:
    """Score drift, store the report (JSON + HTML), set gauges and raise alerts."""
    if bool(model) == bool(current):
        fail("give either --model NAME, or --reference T1 --current T2", 2)
    if current and not reference:
        fail("--current needs --reference", 2)
    from aiw.mlops.monitoring.service import MonitoringService

    ws = workspace()
    service = MonitoringService(ws)
    who = actor()
    if model:
        check = service.check_model(
            model, actor=who, hours=hours, reference_table=reference, methods=_methods(method), drift_share=drift_share
        )
    else:
        cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
        check = service.check_tables(
            reference, current, actor=who, columns=cols, methods=_methods(method), drift_share=drift_share
        )
    if deliver and ws.settings.alerts.webhooks:
        from aiw.mlops.monitoring.alerts import OutboxWorker

        OutboxWorker(ws.db, ws.settings.alerts, audit=ws.audit).deliver_pending()
    if as_json:
        print(json.dumps(check.to_dict(), indent=1, default=str))
        return
    report = check.report
    table(
        f"Drift: {check.subject} (reference {check.reference_source})",
        ["column", "kind", "method", "score", "threshold", "drift", "exact"],
        [
            (
                c.column,
                c.kind,
                c.method,
                "-" if c.score is None else f"{c.score:.4g}",
                f"{c.threshold:g}",
                "[red]DRIFT[/]" if c.drifted else "ok",
                "yes" if c.exact else "sketch",
            )
            for c in report.columns
        ],
    )
    verdict = "[bold red]DATASET DRIFT[/]" if report.dataset_drift else "[green]no dataset drift[/]"
    console.print(
        f"{verdict}: {report.n_drifted}/{report.n_columns} columns drifted "
        f"(share {report.share_drifted:.2f}, threshold {report.drift_share:g}) in {report.elapsed_s:.2f} s"
    )
    for name, why in report.skipped.items():
        console.print(f"  [dim]skipped {name}: {why}[/]")
    if check.performance is not None:
        p = check.performance
        console.print(
            f"performance: accuracy {p.reference.accuracy} -> {p.current.accuracy}, "
            f"AUC {p.reference.auc} -> {p.current.auc}"
        )
    for a in check.alerts:
        console.print(f"  [yellow]alert[/] #{a.id} \\[{a.severity}] {a.message}")
    console.print(f"report #{check.id}: {check.html_path}")


@app.command()
def reports(
    subject: str = typer.Option(None, help="Only this subject (model:NAME or table:NAME)."),
    limit: int = typer.Option(20, min=1, max=1000, help="Most reports shown."),
) -> None:
    """Stored drift reports, newest first."""
    from aiw.mlops.monitoring.service import MonitoringService

    rows = MonitoringService(workspace()).reports(subject=subject, limit=limit)
    table(
        "Drift reports",
        ["id", "time (UTC)", "subject", "kind", "drift", "drifted", "html"],
        [
            (
                r.id,
                r.created_at[:19].replace("T", " "),
                r.subject,
                r.kind,
                "yes" if r.dataset_drift else "no",
                f"{r.n_drifted}/{r.n_columns}",
                r.html_path or "",
            )
            for r in rows
        ],
    )


@app.command()
def alerts(
    limit: int = typer.Option(50, min=1, max=10_000, help="Most alerts shown."),
    severity: str = typer.Option(None, help="info | warning | critical"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """Raised alerts, newest first."""
    from aiw.mlops.monitoring.alerts import AlertManager

    ws = workspace()
    found = AlertManager(ws.db, ws.audit, ws.settings.alerts).list_alerts(limit=limit, severity=severity)
    if as_json:
        for a in found:
            print(json.dumps(a.to_dict(), default=str))
        return
    table(
        "Alerts",
        ["id", "time (UTC)", "severity", "rule", "subject", "message", "ack"],
        [
            (
                a.id,
                a.created_at[:19].replace("T", " "),
                a.severity,
                a.rule,
                a.subject,
                a.message,
                a.acknowledged_by or "",
            )
            for a in found
        ],
    )


@app.command()
def labels(
    model: str = typer.Argument(..., help="The registered model the predictions came from."),
    path: str = typer.Argument(..., help="CSV (request_id,label), JSON or JSON Lines file of true labels."),
) -> None:
    """Attach true labels to served predictions (by the request_id each prediction was answered with)."""
    from aiw.mlops.monitoring.traffic import attach_labels, load_labels

    ws = workspace()
    given = load_labels(path)
    attached = attach_labels(ws.db, ws.audit, model, given, actor=actor())
    unknown = len(given) - attached
    console.print(
        f"attached {attached} of {len(given)} labels to {model!r}"
        + (f" ({unknown} unknown request ids)" if unknown else "")
    )


@app.command()
def ack(alert_id: int = typer.Argument(..., help="The alert's id.")) -> None:
    """Acknowledge an alert."""
    from aiw.mlops.monitoring.alerts import AlertManager

    ws = workspace()
    alert = AlertManager(ws.db, ws.audit, ws.settings.alerts).acknowledge(alert_id, actor=actor())
    console.print(f"alert #{alert.id} acknowledged by {alert.acknowledged_by}")


@app.command()
def deliver(
    follow: bool = typer.Option(False, "--follow", help="Keep delivering until interrupted."),
) -> None:
    """Send queued webhook alerts (once, or continuously with --follow)."""
    import time

    from aiw.mlops.monitoring.alerts import OutboxWorker

    ws = workspace()
    worker = OutboxWorker(ws.db, ws.settings.alerts, audit=ws.audit)
    while True:
        stats = worker.deliver_pending()
        if stats.attempted or not follow:
            console.print(
                f"delivered {stats.delivered}, retrying {stats.retried}, dead {stats.dead}; "
                f"{len(worker.pending())} pending"
            )
        if not follow:
            return
        time.sleep(ws.settings.alerts.poll_s)
