"""``aiw data``: the insurer's sample data (and, later, dbt builds and data quality gates)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from aiw.cli._common import actor, console, fail, progress, table, workspace

if TYPE_CHECKING:
    from rich.progress import TaskID

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)

_MIN_ROWS, _MAX_ROWS = 100, 50_000_000  # mirrors aiw.data.sample, which validates again


@app.command()
def generate(
    rows: int = typer.Option(100_000, "--rows", "-n", help="Number of claims (100 to 50,000,000)."),
    seed: int = typer.Option(42, "--seed", "-s", help="Random seed: the same seed and end date give the same data."),
    end_date: str = typer.Option(
        None, "--end-date", help="Last day of the three-year window, YYYY-MM-DD (default: today, UTC)."
    ),
) -> None:
    """Generate customers, policies, claims, payments and policy documents into the warehouse."""
    if not _MIN_ROWS <= rows <= _MAX_ROWS:
        fail(f"--rows must be between {_MIN_ROWS:,} and {_MAX_ROWS:,}; got {rows:,}.", 2)
    if seed < 0:
        fail(f"--seed must be a non-negative integer; got {seed}.", 2)
    from aiw.data.sample import generate as generate_sample

    ws = workspace()
    with progress() as bar:
        tasks: dict[str, TaskID] = {}

        def report(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        summary = generate_sample(ws, rows=rows, seed=seed, end_date=end_date, progress=report, actor=actor())
    table(
        f"Sample data in {ws.warehouse_path}",
        ["table", "rows", "seconds"],
        [(name, f"{n:,}", f"{summary.seconds.get(name, 0.0):.2f}") for name, n in summary.rows.items()]
        + [("total", "", f"{summary.total_seconds:.2f}")],
    )
    console.print(
        f"Claims from {summary.start_date} to {summary.end_date}, seed {summary.seed}; "
        f"fraud rate {summary.fraud_rate:.1%}; {summary.anomalies} injected volume anomalies "
        f"(table sample_anomalies); documents in {summary.documents_dir}."
    )


# dbt builds, docs and the quality gates (issue 7) live in their own module.
from aiw.cli._data_platform import register as _register_data_platform  # noqa: E402

_register_data_platform(app)
