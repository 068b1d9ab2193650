"""``aiw models``: train, register, approve, promote, roll back, document, export and score models.

The CLI acts as the local operator: its name is ``$AIW_ACTOR`` (default ``cli:<user>``) and its
role ``$AIW_ROLE`` (default ``admin``). Approvals still need a different actor than the requester,
so a second person runs ``AIW_ACTOR=alex AIW_ROLE=approver aiw models approve 3``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from aiw.cli._common import actor, console, progress, table, workspace

if TYPE_CHECKING:
    from aiw.governance.identity import Principal

__all__ = ["app", "principal"]

app = typer.Typer(no_args_is_help=True)

_TARGET_HELP = "staging or production (production moves @champion)"


def principal() -> Principal:
    """The CLI's principal: ``$AIW_ACTOR`` with the role ``$AIW_ROLE`` (default admin)."""
    from aiw.governance.identity import Principal, permissions_of

    role = os.environ.get("AIW_ROLE", "admin").strip() or "admin"
    permissions_of(role)  # an unknown role is refused with the list of roles
    return Principal(actor(), role)


def _ref(alias: str | None, version: int | None) -> str | int | None:
    from aiw.errors import InvalidInputError

    if alias and version:
        raise InvalidInputError("Give --alias or --version, not both.")
    return version if version else alias


@app.command("train")
def train(
    name: str = typer.Argument("claims-fraud", help="The model's name (the sample fraud model is trained)."),
    seed: int = typer.Option(0, help="Random seed of the split and the booster."),
    max_iter: int = typer.Option(200, help="Boosting iterations."),
    limit: int | None = typer.Option(None, help="Train on the first N claims only."),
    register: bool = typer.Option(False, "--register", help="Register the model as a new version at once."),
) -> None:
    """Train the claim-fraud model over the warehouse and log it to MLflow."""
    from aiw.mlops.training import train_claims_fraud

    ws = workspace()
    with console.status(f"training {name} ..."):
        result = train_claims_fraud(ws, name=name, seed=seed, max_iter=max_iter, limit=limit)
    m = result.metrics
    rows = result.fingerprint.rows if result.fingerprint else "?"
    gap = result.groups.get("gaps", {}).get("selection_rate", float("nan"))
    console.print(
        f"[bold]{name}[/] trained in {result.seconds:.1f} s on {rows} claims: auc {m['auc']:.3f}, "
        f"accuracy {m['accuracy']:.3f}, f1 {m['f1']:.3f}; selection-rate gap by gender {gap:.3f}"
    )
    console.print(f"run {result.logged.run_id}, model {result.logged.model_uri}")
    if register:
        from aiw.mlops.registry import ModelRegistry

        mv = ModelRegistry(ws).register(result.logged, name, principal())
        console.print(f"registered [bold]{name}[/] version {mv.version} (manifest {mv.manifest_sha256[:12]})")


@app.command("register")
def register_cmd(
    name: str = typer.Argument(..., help="The registered model's name."),
    source: str = typer.Argument(..., help="A run id or a models:/m-... URI."),
    description: str = typer.Option("", help="Free text kept with the version."),
    parent: int | None = typer.Option(None, help="The version this one succeeds (default: the newest)."),
) -> None:
    """Register a logged model as a new governed version (checksums, lineage, audit)."""
    from aiw.mlops.registry import ModelRegistry

    mv = ModelRegistry(workspace()).register(source, name, principal(), description=description, parent_version=parent)
    console.print(
        f"registered [bold]{name}[/] version {mv.version}: {len(mv.manifest)} files, "
        f"manifest {mv.manifest_sha256[:12]}, parent {mv.parent_version or '-'}"
    )


@app.command("list")
def list_cmd() -> None:
    """Every governed model, its newest version and its aliases."""
    from aiw.mlops.registry import ModelRegistry

    principal().require("models:read")

    rows = [
        (
            m.name,
            m.latest_version,
            m.versions,
            ", ".join(f"@{a}={v}" for a, v in sorted(m.aliases.items())) or "-",
            m.updated_at.isoformat(timespec="seconds"),
        )
        for m in ModelRegistry(workspace()).list_models()
    ]
    table("Models", ["name", "latest", "versions", "aliases", "updated"], rows)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="The model."),
    version: int | None = typer.Argument(None, help="One version (default: all)."),
) -> None:
    """A model's versions, aliases and promotion requests, or one version in detail."""
    from aiw.errors import NotFoundError
    from aiw.mlops.registry import ModelRegistry, PromotionWorkflow

    principal().require("models:read")
    ws = workspace()
    reg, wf = ModelRegistry(ws), PromotionWorkflow(ws)
    if version is not None:
        mv = reg.get(name, version)
        console.print(f"[bold]{name}[/] v{mv.version}  aliases: {', '.join(mv.aliases) or '-'}")
        console.print(
            f"registered by {mv.registered_by} at {mv.registered_at.isoformat(timespec='seconds')}; "
            f"run {mv.run_id}; parent {mv.parent_version or '-'}"
        )
        console.print(
            f"data {mv.data_fingerprint.get('table')} ({mv.data_fingerprint.get('rows')} rows, "
            f"sha256 {str(mv.data_fingerprint.get('sha256'))[:12]}); code {mv.code_version.get('version')} "
            f"@ {str(mv.code_version.get('git_commit'))[:12] or '?'}"
        )
        table(
            "Metrics",
            ["metric", "value"],
            [(k, f"{v:.4f}") for k, v in sorted(mv.metrics.items()) if not k.startswith(("gender_", "gap_"))],
        )
        table("Gates", ["gate"], [(g.describe(),) for g in wf.gates(mv)])
        table("Files", ["file", "sha256"], [(p, h[:16]) for p, h in mv.manifest.items()])
        return
    versions = reg.versions(name)
    if not versions:
        raise NotFoundError(f"No model named {name!r} is registered", hint="see 'aiw models list'")
    table(
        f"{name} versions",
        ["version", "aliases", "auc", "registered by", "at", "parent"],
        [
            (
                v.version,
                ", ".join(v.aliases) or "-",
                f"{v.metrics.get('auc', float('nan')):.4f}",
                v.registered_by,
                v.registered_at.isoformat(timespec="seconds"),
                v.parent_version or "-",
            )
            for v in versions
        ],
    )
    _requests_table(wf.requests(name), f"{name} promotion requests")
    problems = reg.check_mlflow_aliases(name)
    if problems:
        console.print("[bold red]aliases moved outside the governed layer:[/] " + "; ".join(problems))


def _requests_table(requests: list[Any], title: str) -> None:
    table(
        title,
        ["id", "model", "version", "target", "status", "approvals", "requested by", "decisions"],
        [
            (
                r.id,
                r.model,
                r.version,
                r.target,
                r.status,
                f"{r.approvals}/{r.approvals_needed}",
                r.requested_by,
                "; ".join(f"{d.approver}: {d.decision}" for d in r.decisions) or "-",
            )
            for r in requests
        ],
    )


@app.command("requests")
def requests_cmd(
    name: str | None = typer.Argument(None, help="One model (default: all)."),
    status: str | None = typer.Option("pending", help="pending, approved, rejected, promoted, superseded, or all."),
) -> None:
    """Promotion requests (by default the pending ones: the approval queue)."""
    from aiw.mlops.registry import PromotionWorkflow

    principal().require("models:read")
    wanted = None if status in (None, "all") else status
    _requests_table(PromotionWorkflow(workspace()).requests(name, status=wanted), "Promotion requests")


@app.command("request")
def request_cmd(
    name: str = typer.Argument(..., help="The model."),
    version: int = typer.Argument(..., help="The version to promote."),
    to: str = typer.Option(..., "--to", help=_TARGET_HELP),
    reason: str = typer.Option("", help="Why this version should be promoted."),
) -> None:
    """Request that a version be promoted (a data scientist asks, an approver decides)."""
    from aiw.mlops.registry import PromotionWorkflow

    r = PromotionWorkflow(workspace()).request(name, version, to, principal(), reason=reason)
    console.print(
        f"request [bold]#{r.id}[/]: {name} v{version} -> {to} is {r.status} "
        f"({r.approvals}/{r.approvals_needed} approvals)"
    )


@app.command("approve")
def approve(
    request_id: int = typer.Argument(..., help="The request's id (see 'aiw models requests')."),
    comment: str = typer.Option("", help="Why you approve."),
) -> None:
    """Approve a pending request (not your own)."""
    from aiw.mlops.registry import PromotionWorkflow

    r = PromotionWorkflow(workspace()).approve(request_id, principal(), comment=comment)
    console.print(
        f"request #{r.id} ({r.model} v{r.version} -> {r.target}) is {r.status} "
        f"({r.approvals}/{r.approvals_needed} approvals)"
    )


@app.command("reject")
def reject(
    request_id: int = typer.Argument(..., help="The request's id."),
    comment: str = typer.Option(..., help="Why you reject it (required)."),
) -> None:
    """Reject a pending request, saying why."""
    from aiw.mlops.registry import PromotionWorkflow

    r = PromotionWorkflow(workspace()).reject(request_id, principal(), comment=comment)
    console.print(f"request #{r.id} ({r.model} v{r.version} -> {r.target}) is {r.status}")


@app.command("promote")
def promote(
    name: str = typer.Argument(..., help="The model."),
    version: int = typer.Argument(..., help="The approved version."),
    to: str = typer.Option(..., "--to", help=_TARGET_HELP),
) -> None:
    """Move the target's alias to an approved, gate-passing version."""
    from aiw.mlops.registry import ALIAS_OF_TARGET, PromotionWorkflow

    PromotionWorkflow(workspace()).promote(name, version, to, principal())
    console.print(f"[bold]{name}@{ALIAS_OF_TARGET[to]}[/] -> version {version}")


@app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="The model."),
    to: str = typer.Option("production", "--to", help=_TARGET_HELP),
    reason: str = typer.Option("", help="Why."),
) -> None:
    """Move the target's alias back to the version it held before."""
    from aiw.mlops.registry import ALIAS_OF_TARGET, PromotionWorkflow

    version = PromotionWorkflow(workspace()).rollback(name, to, principal(), reason=reason)
    console.print(f"[bold]{name}@{ALIAS_OF_TARGET[to]}[/] rolled back to version {version}")


@app.command("card")
def card(
    name: str = typer.Argument(..., help="The model."),
    version: int = typer.Argument(..., help="The version."),
    out: Path | None = typer.Option(None, help="Folder to write to (default <home>/artifacts/model-cards/NAME)."),
) -> None:
    """Write the model card (Markdown and HTML)."""
    from aiw.mlops.registry import write_model_card

    written = write_model_card(workspace(), name, version, principal(), out_dir=out)
    console.print(f"model card: {written.markdown_path}")
    console.print(f"            {written.html_path}")


@app.command("export")
def export(
    name: str = typer.Argument(..., help="The model."),
    version: int = typer.Argument(..., help="The version."),
    format: str = typer.Option("onnx", "--format", help="onnx (the only edge format)."),
    tolerance: float = typer.Option(1e-4, help="Largest probability difference allowed on held-out rows."),
    out: Path | None = typer.Option(None, help="Folder to write to (default <home>/artifacts/edge/NAME/vN)."),
) -> None:
    """Export a version for the edge (ONNX), checked against the original on held-out rows."""
    from aiw.errors import InvalidInputError
    from aiw.mlops.serving.edge import export_onnx

    if format != "onnx":
        raise InvalidInputError(f"Unknown export format {format!r}; use onnx.")
    result = export_onnx(workspace(), name, version, principal(), tolerance=tolerance, out_dir=out)
    console.print(f"exported {name} v{version} to {result.path} ({result.bytes} bytes, sha256 {result.sha256[:12]})")
    console.print(
        f"checked on {result.rows_checked} held-out rows: max abs difference of probabilities "
        f"{result.max_abs_diff:.2e} (tolerance {result.tolerance:g}), "
        f"{result.label_mismatches} labels differ"
    )


@app.command("score")
def score(
    name: str = typer.Argument(..., help="The model."),
    table_name: str = typer.Option(..., "--table", help="The warehouse table to score."),
    out: str = typer.Option(..., "--out", help="The table to write (replaced atomically)."),
    alias: str | None = typer.Option(None, help="Alias to score with (default champion)."),
    version: int | None = typer.Option(None, help="Version to score with."),
    engine: str | None = typer.Option(None, help="local or ray (default: AIW_ENGINE__BATCH)."),
    chunk_rows: int | None = typer.Option(None, help="Rows per chunk (default: AIW_ENGINE__CHUNK_ROWS)."),
    limit: int | None = typer.Option(None, help="Score only the first N rows."),
) -> None:
    """Score a warehouse table in chunks, in-process or on Ray."""
    from aiw.mlops.serving.batch import score_table

    ws = workspace()
    with progress(transient=True) as bar:
        task = bar.add_task(f"scoring {table_name}", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = score_table(
            ws,
            name,
            table_name,
            out,
            principal(),
            ref=_ref(alias, version),
            engine=engine,
            chunk_rows=chunk_rows,
            limit=limit,
            progress=tick,
        )
    console.print(
        f"scored {result.rows} rows of {table_name} with {name} v{result.version} on {result.engine} "
        f"in {result.seconds:.1f} s ({result.rows_per_s:,.0f} rows/s) -> {out}"
    )


@app.command("stream")
def stream(
    name: str = typer.Argument(..., help="The model."),
    in_subject: str = typer.Option(..., "--in", help="JetStream subject to read records from."),
    out_subject: str = typer.Option(..., "--out", help="Subject to publish results to."),
    alias: str | None = typer.Option(None, help="Alias to score with (default champion)."),
    version: int | None = typer.Option(None, help="Version to score with."),
    batch: int = typer.Option(100, help="Most records scored together."),
    ack_wait: float = typer.Option(30.0, help="Seconds before an unacknowledged record is redelivered."),
    max_messages: int | None = typer.Option(None, help="Stop after N records."),
    max_idle: float | None = typer.Option(None, help="Stop after N seconds without records."),
) -> None:
    """Score records from a NATS JetStream subject into another, at least once (Ctrl-C stops)."""
    import asyncio

    from aiw.mlops.serving.stream import StreamScorer

    scorer = StreamScorer(
        workspace(),
        name,
        in_subject,
        out_subject,
        principal(),
        ref=_ref(alias, version),
        batch=batch,
        ack_wait_s=ack_wait,
    )
    console.print(f"scoring {in_subject} -> {out_subject} with {name} (consumer {scorer.durable}); Ctrl-C stops")
    try:
        stats = asyncio.run(scorer.run(max_messages=max_messages, idle_timeout_s=max_idle))
    finally:
        scorer.close()
    console.print(
        f"{stats.received} records ({stats.scored} scored, {stats.errors} errors, {stats.duplicates} "
        f"duplicate results dropped) in {stats.seconds:.1f} s"
    )
