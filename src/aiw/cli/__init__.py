"""The ``aiw`` command line: one Typer group per capability, thin over the core library.

Heavy libraries are imported inside commands, so ``aiw --help`` answers at once.
"""

from __future__ import annotations

import importlib
import sys

import typer

from aiw.cli._common import exit_code, fail
from aiw.errors import AiwError

__all__ = ["app", "main"]

app = typer.Typer(
    name="aiw",
    help="Enterprise AI Workflows: AI in SQL, governed MLOps, document Q&A and a data platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)

# (module, group name or None for top-level commands, help)
_GROUPS: list[tuple[str, str | None, str]] = [
    ("aiw.cli.workspace_cmds", None, ""),
    ("aiw.cli.keys", "keys", "Create, list and revoke API keys."),
    ("aiw.cli.audit", "audit", "Read and verify the tamper-evident audit log."),
    ("aiw.cli.data", "data", "Sample data, dbt builds and data quality gates."),
    ("aiw.cli.features", "features", "The feature store: apply, materialize, look up, training sets."),
    ("aiw.cli.pipelines", "pipelines", "Run, list, schedule and deploy the named pipelines."),
    ("aiw.cli.embeddings", "embeddings", "Refresh the RAG embeddings behind a drift gate."),
    ("aiw.cli.sql", None, ""),
    ("aiw.cli.insights", "insights", "Forecasts, anomalies and quick baseline models over warehouse tables."),
    ("aiw.cli.rag", "rag", "Document Q&A: ingest documents, ask with citations, evaluate retrieval."),
    ("aiw.cli.monitor", "monitor", "Drift reports, alerts and webhook delivery."),
    ("aiw.cli.models", "models", "Train, register, approve, promote, document, export and score models."),
    ("aiw.cli.deploy", "deploy", "Canary and shadow rollouts with guardrails and automatic rollback."),
]

for _module, _name, _help in _GROUPS:
    _mod = importlib.import_module(_module)
    if _name is None:
        _mod.register(app)
    else:
        app.add_typer(_mod.app, name=_name, help=_help)


def main() -> None:
    """Console entry point: run the app and turn platform errors into a one-line reason."""
    try:
        app()
    except AiwError as exc:
        fail(str(exc), exit_code(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    sys.exit(0)
