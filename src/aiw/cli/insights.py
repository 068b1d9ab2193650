"""``aiw insights``: forecasts, anomalies and quick baseline models over warehouse tables."""

from __future__ import annotations

from pathlib import Path

import typer

from aiw.cli._common import actor, console, err_console, table, workspace

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)

_TABLE_HELP = "A warehouse table, or a SELECT query."
_AGG_HELP = "How rows of one timestamp combine: none | sum | count | mean | min | max."
_GRAIN_HELP = "Truncate timestamps first: hour | day | week | month | quarter | year."
_FILL_HELP = "Gaps in the timestamps: interpolate | zero (counts) | none."


def _write(frame: object, out: Path | None) -> None:
    if out is None:
        return
    import pyarrow as pa

    from aiw.sql.export import format_for, to_bytes, write_atomic

    data = pa.Table.from_pandas(frame, preserve_index=False)
    path = write_atomic(out, to_bytes(data, format_for(out, None)))
    err_console.print(f"written to {path}", highlight=False)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "" if v != v else f"{v:,.2f}"
    return str(v)[:19]


@app.command()
def forecast(
    source: str = typer.Option(..., "--table", "-t", help=_TABLE_HELP),
    ts: str = typer.Option(..., "--ts", help="The timestamp (or date) column."),
    value: str = typer.Option(None, "--value", help="The value column (not needed with --agg count)."),
    series: str = typer.Option(None, "--series", help="The column naming each series."),
    horizon: int = typer.Option(30, "--horizon", min=1, max=10_000, help="Steps ahead (days for daily data)."),
    level: float = typer.Option(95.0, "--level", min=1, max=99.99, help="Prediction interval, percent."),
    agg: str = typer.Option("none", "--agg", help=_AGG_HELP),
    grain: str = typer.Option(None, "--grain", help=_GRAIN_HELP),
    fill: str = typer.Option("interpolate", "--fill", help=_FILL_HELP),
    out: Path = typer.Option(None, "--out", "-o", help="Also write the forecast (csv, json or parquet)."),
) -> None:
    """Forecast each series (AutoETS; MSTL for hourly or weekly data) with a prediction interval.

    Example: aiw insights forecast --table claims --ts incident_date --agg count --grain day
    --series line_of_business --fill zero --horizon 30
    """
    from aiw.sql.forecast import forecast as run_forecast
    from aiw.sql.forecast import load_history

    history = load_history(workspace(), source, ts, value, series, agg=agg, grain=grain)
    frame = run_forecast(history, "ts", "y", "series" if series else None, horizon=horizon, level=level, fill=fill)  # type: ignore[arg-type]
    for note in frame.attrs.get("notes", []):
        err_console.print(f"[yellow]note:[/] {note}", highlight=False)
    table(
        f"Forecast, {horizon} steps, {level:g}% interval",
        ["series", "ts", "forecast", "lower", "upper", "model"],
        [[_fmt(v) for v in row] for row in frame.itertuples(index=False)][:500],
    )
    if len(frame) > 500:
        console.print(f"[dim]{len(frame):,} rows; first 500 shown (use --out for all)[/]")
    _write(frame, out)


@app.command()
def anomalies(
    source: str = typer.Option(..., "--table", "-t", help=_TABLE_HELP),
    ts: str = typer.Option(..., "--ts", help="The timestamp (or date) column."),
    value: str = typer.Option(None, "--value", help="The value column (not needed with --agg count)."),
    series: str = typer.Option(None, "--series", help="The column naming each series."),
    level: float = typer.Option(
        99.0, "--level", min=1, max=99.9999, help="Interval outside which a point is anomalous."
    ),
    agg: str = typer.Option("none", "--agg", help=_AGG_HELP),
    grain: str = typer.Option(None, "--grain", help=_GRAIN_HELP),
    fill: str = typer.Option("interpolate", "--fill", help=_FILL_HELP),
    show_all: bool = typer.Option(False, "--all", help="Show every point, not only the anomalies."),
    out: Path = typer.Option(None, "--out", "-o", help="Also write every point (csv, json or parquet)."),
) -> None:
    """Flag the points outside the one-step-ahead prediction interval.

    Example: aiw insights anomalies --table claims --ts incident_date --agg count --grain day
    --series line_of_business --fill zero
    """
    from aiw.sql.forecast import detect_anomalies, load_history

    history = load_history(workspace(), source, ts, value, series, agg=agg, grain=grain)
    frame = detect_anomalies(history, "ts", "y", "series" if series else None, level=level, fill=fill)  # type: ignore[arg-type]
    shown = frame if show_all else frame[frame["is_anomaly"]].sort_values("distance", key=abs, ascending=False)
    table(
        f"{int(frame['is_anomaly'].sum())} anomalies in {len(frame):,} points ({level:g}% interval)",
        ["series", "ts", "y", "forecast", "lower", "upper", "distance"],
        [
            [
                _fmt(r.series),
                _fmt(r.ts),
                _fmt(r.y),
                _fmt(r.forecast),
                _fmt(r.lower),
                _fmt(r.upper),
                f"{r.distance:+.1f}",
            ]
            for r in shown.head(500).itertuples(index=False)
        ],
    )
    _write(frame, out)


@app.command()
def baseline(
    source: str = typer.Option(..., "--table", "-t", help="A warehouse table or view."),
    target: str = typer.Option(..., "--target", help="The column to predict."),
    folds: int = typer.Option(5, "--folds", min=2, max=20, help="Cross-validation folds."),
    models: str = typer.Option(None, "--models", help="Comma-separated model names (default: all)."),
    exclude: str = typer.Option(None, "--exclude", help="Comma-separated columns to leave out (leaks)."),
    max_rows: int = typer.Option(50_000, "--max-rows", min=20, help="Rows sampled from larger tables."),
) -> None:
    """Compare several scikit-learn models with cross-validation; each is logged to MLflow.

    Example: aiw insights baseline --table claims --target is_fraud --exclude status
    """
    from aiw.sql.baseline import baseline as run_baseline

    def split(text: str | None) -> list[str] | None:
        return [p.strip() for p in text.split(",") if p.strip()] if text else None

    board = run_baseline(
        workspace(),
        source,
        target,
        folds=folds,
        models=split(models),
        exclude=split(exclude),
        max_rows=max_rows,
        actor=actor(),
    )
    frame = board.to_frame()
    metrics = [c for c in frame.columns if c not in ("model", "run_id")]
    table(
        f"Baseline: {board.target} from {board.table} ({board.task}, {board.rows:,} rows, {board.folds} folds, "
        f"by {board.metric})",
        ["rank", "model", *metrics, "MLflow run"],
        [
            [i + 1, r.model, *[f"{getattr(r, m):.4f}" for m in metrics], r.run_id]
            for i, r in enumerate(frame.itertuples(index=False))
        ],
    )
    console.print(f"[dim]features: {', '.join(board.features)}[/]", highlight=False)
    console.print(f"[dim]dropped: {', '.join(f'{k} ({v})' for k, v in board.dropped.items())}[/]", highlight=False)
    console.print(f"experiment [bold]baseline-{board.table}[/] in {workspace().tracking_uri}", highlight=False)
