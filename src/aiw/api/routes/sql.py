"""Read-only SQL with the ``ai_*`` functions, forecasts and anomaly detection."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from aiw.api.deps import WorkspaceDep, requires

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["sql"])

_MAX_API_ROWS = 100_000


class SqlRequest(BaseModel):
    """One read-only query."""

    sql: str = Field(min_length=1, max_length=1_000_000, description="One SELECT statement.")
    limit: int | None = Field(None, ge=1, le=_MAX_API_ROWS, description="Most rows (default AIW_SQL__ROW_LIMIT).")
    timeout_s: float | None = Field(None, gt=0, le=600, description="Seconds before the query is interrupted.")


class SqlResponse(BaseModel):
    """Rows as lists in column order."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    elapsed_ms: float
    warnings: list[str] = []


class SeriesRequest(BaseModel):
    """Where a history comes from, and how to shape it."""

    source: str = Field(min_length=1, max_length=100_000, description="A table name or a SELECT query.")
    ts: str = Field(min_length=1, max_length=200, description="The timestamp column.")
    value: str | None = Field(None, max_length=200, description="The value column (not needed with agg=count).")
    series: str | None = Field(None, max_length=200, description="The column naming each series.")
    agg: Literal["none", "sum", "count", "mean", "min", "max"] = "none"
    grain: Literal["hour", "day", "week", "month", "quarter", "year"] | None = None
    fill: Literal["interpolate", "zero", "none"] = "interpolate"


class ForecastRequest(SeriesRequest):
    """A forecast request."""

    horizon: int = Field(30, ge=1, le=10_000, description="Steps ahead.")
    level: float = Field(95.0, gt=0, lt=100, description="Prediction interval, percent.")


class AnomalyRequest(SeriesRequest):
    """An anomaly detection request."""

    level: float = Field(99.0, gt=0, lt=100, description="Interval outside which a point is anomalous.")
    only_anomalies: bool = Field(False, description="Return only the anomalous points.")


class FrameResponse(BaseModel):
    """A result table and what was simplified on the way."""

    columns: list[str]
    rows: list[list[Any]]
    notes: list[str] = []


def _frame_json(frame: Any) -> FrameResponse:
    from aiw.sql.runner import jsonable

    return FrameResponse(
        columns=[str(c) for c in frame.columns],
        rows=[
            [
                jsonable(v.to_pydatetime() if hasattr(v, "to_pydatetime") else (v.item() if hasattr(v, "item") else v))
                for v in row
            ]
            for row in frame.itertuples(index=False)
        ],
        notes=list(frame.attrs.get("notes", [])),
    )


@router.post("/sql", openapi_extra=requires("sql:query"), response_model=SqlResponse)
def sql_query(body: SqlRequest, ws: WorkspaceDep) -> SqlResponse:
    """Run one read-only query; statements that write or attach are refused (422)."""
    from aiw.sql.runner import run_query

    result = run_query(ws, body.sql, row_limit=body.limit, timeout_s=body.timeout_s)
    return SqlResponse(
        columns=result.columns,
        rows=result.rows(),
        truncated=result.truncated,
        elapsed_ms=round(result.elapsed_s * 1000, 3),
        warnings=result.warnings,
    )


@router.post("/insights/forecast", openapi_extra=requires("insights:run"), response_model=FrameResponse)
def insights_forecast(body: ForecastRequest, ws: WorkspaceDep) -> FrameResponse:
    """Forecast each series ``horizon`` steps ahead: series, ts, forecast, lower, upper, model."""
    from aiw.sql.forecast import forecast, load_history

    history = load_history(ws, body.source, body.ts, body.value, body.series, agg=body.agg, grain=body.grain)
    return _frame_json(
        forecast(
            history,
            "ts",
            "y",
            "series" if body.series else None,
            horizon=body.horizon,
            level=body.level,
            fill=body.fill,
        )
    )


@router.post("/insights/anomalies", openapi_extra=requires("insights:run"), response_model=FrameResponse)
def insights_anomalies(body: AnomalyRequest, ws: WorkspaceDep) -> FrameResponse:
    """Each point's one-step forecast, bounds, is_anomaly, percentile and distance."""
    from aiw.sql.forecast import detect_anomalies, load_history

    history = load_history(ws, body.source, body.ts, body.value, body.series, agg=body.agg, grain=body.grain)
    frame = detect_anomalies(history, "ts", "y", "series" if body.series else None, level=body.level, fill=body.fill)
    if body.only_anomalies:
        notes = frame.attrs.get("notes", [])
        frame = frame[frame["is_anomaly"]].reset_index(drop=True)
        frame.attrs["notes"] = notes
    return _frame_json(frame)
