"""``aiw features``: the Feast feature store over the marts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import typer

from aiw.cli._common import actor, console, table, workspace

if TYPE_CHECKING:
    from aiw.features.store import FeatureStoreService

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)


def _service() -> FeatureStoreService:
    from aiw.features.store import FeatureStoreService

    ws = workspace()
    return FeatureStoreService(ws, ws.settings.features)


def _when(text: str | None, option: str) -> datetime | None:
    from aiw.errors import InvalidInputError

    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInputError(f"{option} must be an ISO date or time. Got {text!r}.") from exc


@app.command("apply")
def apply() -> None:
    """Export the feature marts to Parquet and register entities, feature views and services."""
    with console.status("exporting the marts and applying the definitions (Feast loads in a few seconds) ..."):
        result = _service().apply(actor=actor())
    table(
        f"Feature store {result.project!r} ({result.seconds:.1f} s)",
        ["feature view", "features"],
        [(name, ", ".join(features)) for name, features in result.feature_views.items()],
    )
    console.print(
        f"entities: {', '.join(result.entities)}; services: {', '.join(result.feature_services)}; "
        f"exported: {', '.join(f'{k} ({v:,} rows)' for k, v in result.exported.items())}"
    )


@app.command("materialize")
def materialize(
    start: str = typer.Option(None, "--start", help="Oldest event time to load (ISO); default end minus the TTL."),
    end: str = typer.Option(None, "--end", help="Newest event time to load (ISO); default now."),
) -> None:
    """Load the newest feature values into the online store (SQLite, or Redis when configured)."""
    with console.status("materializing ..."):
        result = _service().materialize(start=_when(start, "--start"), end=_when(end, "--end"), actor=actor())
    console.print(
        f"materialized {', '.join(result.feature_views)} into the {result.online_store} online store "
        f"({result.start:%Y-%m-%d} to {result.end:%Y-%m-%d %H:%M} UTC) in {result.seconds:.1f} s"
    )


@app.command("get")
def get(
    entity: list[str] = typer.Option(
        ..., "--entity", "-e", help="Join keys of one entity row, e.g. claim_id=17,customer_id=4 (repeatable)."
    ),
    feature: list[str] = typer.Option(None, "--feature", "-f", help="view:feature (repeatable)."),
    service: str = typer.Option("claims_fraud", "--service", help="A feature service, when no --feature is given."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Look features up in the online store."""
    from aiw.errors import InvalidInputError

    rows = []
    for spec in entity:
        row: dict[str, str] = {}
        for part in spec.split(","):
            key, sep, value = part.partition("=")
            if not sep:
                raise InvalidInputError(f"--entity takes key=value[,key=value]. Got {spec!r}.")
            row[key.strip()] = value.strip()
        rows.append(row)
    values = _service().online(rows, list(feature) if feature else service)
    if as_json:
        console.print_json(json.dumps(values, default=str))
        return
    columns = list(values[0]) if values else []
    table("Online features", columns, [[v.get(c) for c in columns] for v in values])


@app.command("list")
def list_features() -> None:
    """Every registered feature (view:feature)."""
    refs = _service().feature_refs()
    table("Features", ["feature view", "feature"], [ref.split(":", 1) for ref in refs])


@app.command("training-set")
def training_set(
    out: str = typer.Option(..., "--out", "-o", help="Parquet file to write."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the newest N claims."),
) -> None:
    """Write the point-in-time correct training set of the fraud model to a Parquet file."""
    from pathlib import Path

    path = Path(out).expanduser()
    with console.status("joining features point-in-time ..."):
        frame = _service().training_set(limit=limit)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    console.print(f"{len(frame):,} rows x {len(frame.columns)} columns written to {path}")
