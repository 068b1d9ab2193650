"""Model cards: what a version is for, what it was trained on, how well and how fairly it does.

A card is built from the governed record (lineage, checksums, approvals) and the ``evaluation.json``
that travels, checksummed, inside the model folder. It is written as Markdown and as standalone
HTML under ``<workspace>/artifacts/model-cards/<name>/``; both are rendered from one structure, so
they always say the same thing.
"""

from __future__ import annotations

import html
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiw.governance.identity import Principal
from aiw.mlops.registry.approvals import PromotionWorkflow
from aiw.mlops.registry.versions import ModelRegistry

if TYPE_CHECKING:
    from aiw.workspace import Workspace

__all__ = ["FAIRNESS_GAP_WARNING", "ModelCard", "build_card", "write_model_card"]

FAIRNESS_GAP_WARNING = 0.10
"""A gap between groups above this is flagged in the card."""

_OVERALL = ("auc", "accuracy", "f1", "precision", "recall", "fpr", "selection_rate", "base_rate", "rows")
_GROUP = ("rows", "auc", "accuracy", "f1", "selection_rate", "recall", "fpr")


@dataclass
class _Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    table: tuple[list[str], list[list[str]]] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ModelCard:
    """A rendered card and where it was written."""

    name: str
    version: int
    markdown: str
    html: str
    markdown_path: Path | None = None
    html_path: Path | None = None


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 10 else f"{value:.4f}"
    return str(value)


def _evaluation(folder: Path, manifest: dict[str, str]) -> dict[str, Any]:
    for rel in manifest:
        if rel.endswith("evaluation.json"):
            try:
                data: dict[str, Any] = json.loads((folder / rel).read_text())
                return data
            except (OSError, ValueError):
                return {}
    return {}


def build_card(workspace: Workspace, name: str, version: int) -> ModelCard:
    """Build (but do not write) the card of ``version`` of ``name``.

    Raises:
        NotFoundError: unknown model or version.
        IntegrityError: the version's files fail their checksums (a card must not vouch for them).
    """
    registry = ModelRegistry(workspace)
    workflow = PromotionWorkflow(workspace, registry)
    folder, mv = registry.verified_folder(name, version, actor="system:model-card")
    ev = _evaluation(folder, mv.manifest)
    sections: list[_Section] = []

    overview = _Section("Overview")
    overview.bullets = [
        f"Model **{mv.name}**, version **{mv.version}** ({mv.flavor}); aliases: "
        f"{', '.join('@' + a for a in mv.aliases) or 'none'}",
        f"Registered by {mv.registered_by} at {mv.registered_at.isoformat(timespec='seconds')}",
        f"Task: {ev.get('task', 'not recorded')}; label: {ev.get('label', 'not recorded')}",
    ]
    if mv.description:
        overview.paragraphs.append(mv.description)
    sections.append(overview)

    use = _Section("Intended use")
    use.paragraphs.append(ev.get("intended_use") or "Not recorded: the model was logged without an intended use.")
    sections.append(use)

    data = _Section("Training data")
    fp = mv.data_fingerprint
    data.bullets = [
        f"Source: {fp.get('table') or 'not recorded'} ({fp.get('source') or 'unknown'})",
        f"Rows: {fp.get('rows', 'not recorded')}",
        f"Content SHA-256: `{fp.get('sha256') or 'not recorded'}`",
    ]
    if ev.get("split"):
        split = ev["split"]
        data.bullets.append(
            f"Split: {split.get('train_rows')} training rows, {split.get('test_rows')} held-out "
            f"rows (seed {split.get('seed')}, stratified on {split.get('stratified_on')})"
        )
    features = ev.get("features") or [c.name for c in mv.signature]
    data.bullets.append(f"Inputs ({len(mv.signature)}): " + ", ".join(f"{c.name} ({c.type})" for c in mv.signature))
    if features and ev.get("sensitive_attribute"):
        data.bullets.append(
            f"Sensitive attribute **{ev['sensitive_attribute']}** is not an input; it is used "
            "only to measure per-group performance"
        )
    sections.append(data)

    metrics = _Section("Metrics (held-out data)")
    overall = {k: v for k, v in (ev.get("metrics") or mv.metrics).items() if k in _OVERALL}
    if overall:
        metrics.table = (["metric", "value"], [[k, _fmt(overall[k])] for k in _OVERALL if k in overall])
    else:
        metrics.paragraphs.append("No metrics were recorded.")
    gates = workflow.gates(mv)
    if gates:
        metrics.bullets = [f"Gate {g.describe()}" for g in gates]
    sections.append(metrics)

    fairness = ev.get("fairness") or {}
    fair = _Section(f"Per-group metrics and fairness ({fairness.get('attribute', 'sensitive attribute')})")
    groups = fairness.get("groups") or {}
    if groups:
        cols = [m for m in _GROUP if any(m in g for g in groups.values())]
        fair.table = (["group", *cols], [[str(k), *[_fmt(g.get(m)) for m in cols]] for k, g in sorted(groups.items())])
        for metric, gap in sorted((fairness.get("gaps") or {}).items()):
            flag = " **(above the 0.10 warning level: review before use)**" if gap > FAIRNESS_GAP_WARNING else ""
            fair.bullets.append(f"Gap in {metric} between groups: {_fmt(float(gap))}{flag}")
        fair.notes.append(
            "selection_rate gap = demographic parity difference; recall gap = equal opportunity "
            "difference; fpr gap = false positive rate difference."
        )
    else:
        fair.paragraphs.append("Not evaluated: no sensitive attribute was recorded with this model.")
    sections.append(fair)

    limits = _Section("Limitations")
    limits.bullets = list(ev.get("limitations") or ["Not recorded."])
    sections.append(limits)

    approvals = _Section("Approvals")
    requests = [r for r in workflow.requests(name) if r.version == mv.version]
    if requests:
        rows = []
        for r in sorted(requests, key=lambda r: r.id):
            decided = (
                "; ".join(f"{d.approver}: {d.decision}" + (f" ({d.comment})" if d.comment else "") for d in r.decisions)
                or "-"
            )
            rows.append([f"#{r.id}", r.target, r.status, r.requested_by, decided])
        approvals.table = (["request", "target", "status", "requested by", "decisions"], rows)
    else:
        approvals.paragraphs.append("No promotion was requested for this version.")
    policy = workflow.policy(name)
    approvals.notes.append(
        f"Policy: {policy.approvals} distinct approval(s), requester excluded; gates: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(policy.gates.items())) or 'none'}."
    )
    sections.append(approvals)

    lineage = _Section("Lineage and integrity")
    code = mv.code_version
    lineage.bullets = [
        f"Training run: `{mv.run_id}`; logged model: `{mv.model_uri}`",
        f"Parent version: {mv.parent_version if mv.parent_version is not None else 'none (first version)'}",
        f"Code: enterprise-ai-workflows {code.get('version') or '?'}, git commit "
        f"`{code.get('git_commit') or 'unknown'}`"
        + (" (uncommitted changes)" if code.get("git_dirty") == "true" else ""),
        f"Files: {len(mv.manifest)}, manifest SHA-256 `{mv.manifest_sha256}` (verified when this card was written)",
        f"Types trusted at load: {', '.join(mv.trusted_types) or 'skops defaults only'}",
    ]
    sections.append(lineage)

    title = f"Model card: {mv.name} v{mv.version}"
    return ModelCard(mv.name, mv.version, _markdown(title, sections), _html(title, sections))


def write_model_card(
    workspace: Workspace, name: str, version: int, principal: Principal | str, *, out_dir: Path | None = None
) -> ModelCard:
    """Build the card and write ``v<version>.md`` and ``v<version>.html`` (atomically); audited.

    Args:
        out_dir: Where to write; default ``<workspace>/artifacts/model-cards/<name>``.
    """
    card = build_card(workspace, name, version)
    folder = Path(out_dir) if out_dir else workspace.path("artifacts") / "model-cards" / name
    folder.mkdir(parents=True, exist_ok=True)
    card.markdown_path = _atomic_write(folder / f"v{version}.md", card.markdown)
    card.html_path = _atomic_write(folder / f"v{version}.html", card.html)
    actor = principal.name if isinstance(principal, Principal) else principal
    workspace.audit.append(
        actor,
        "models.card",
        f"model:{name}/{version}",
        details={"markdown": str(card.markdown_path), "html": str(card.html_path)},
    )
    return card


def _atomic_write(path: Path, text: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def _markdown(title: str, sections: list[_Section]) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for p in s.paragraphs:
            out += [p, ""]
        if s.table:
            head, rows = s.table
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "|".join("---" for _ in head) + "|")
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
            out.append("")
        if s.bullets:
            out += [f"- {b}" for b in s.bullets] + [""]
        for n in s.notes:
            out += [f"_{n}_", ""]
    return "\n".join(out)


def _inline(text: str) -> str:
    """Escape, then render the two inline marks the cards use: **bold** and `code`."""
    import re

    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def _html(title: str, sections: list[_Section]) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        body.append(f"<h2>{html.escape(s.title)}</h2>")
        body += [f"<p>{_inline(p)}</p>" for p in s.paragraphs]
        if s.table:
            head, rows = s.table
            body.append("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead>")
            body.append(
                "<tbody>"
                + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows)
                + "</tbody></table>"
            )
        if s.bullets:
            body.append("<ul>" + "".join(f"<li>{_inline(b)}</li>" for b in s.bullets) + "</ul>")
        body += [f"<p><em>{_inline(n)}</em></p>" for n in s.notes]
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
        "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;"
        "text-align:left}th{background:#f3f3f3}code{background:#f3f3f3;padding:0 .2rem}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{style}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
