"""A self-contained HTML drift report: one table and an inline SVG plot per column.

No scripts, no external assets: the file opens anywhere, and can be attached to a ticket.
"""

from __future__ import annotations

import html
from typing import Any

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2937}
h1{font-size:1.4rem;margin-bottom:.2rem} .muted{color:#6b7280}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
td,th{border-bottom:1px solid #e5e7eb;padding:.3rem .7rem;text-align:left}
.bad{color:#b91c1c;font-weight:600} .ok{color:#047857}
.badge{display:inline-block;padding:.15rem .5rem;border-radius:.4rem;font-weight:600}
.badge.bad{background:#fee2e2} .badge.ok{background:#d1fae5}
.cols{display:flex;flex-wrap:wrap;gap:1rem} .card{border:1px solid #e5e7eb;border-radius:.5rem;padding:.6rem}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 .8rem;vertical-align:middle}
"""
_REF, _CUR = "#6b7280", "#2563eb"


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _svg(plot: dict[str, Any], width: int = 360, height: int = 150) -> str:
    """Grouped bars of reference vs current shares (histogram bins or categories)."""
    ref = [float(x) for x in plot.get("reference", [])]
    cur = [float(x) for x in plot.get("current", [])]
    n = min(len(ref), len(cur))
    if n == 0:
        return ""
    top = max(max(ref[:n]), max(cur[:n]), 1e-12)
    pad, base = 4, height - 18
    slot = (width - 2 * pad) / n
    bar = max(slot / 2 - 1, 0.5)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    ]
    for i in range(n):
        x = pad + i * slot
        for j, (vals, color) in enumerate(((ref, _REF), (cur, _CUR))):
            h = (base - 4) * vals[i] / top
            parts.append(
                f'<rect x="{x + j * bar:.2f}" y="{base - h:.2f}" width="{bar:.2f}" '
                f'height="{h:.2f}" fill="{color}" opacity="0.85"/>'
            )
    parts.append(f'<line x1="{pad}" y1="{base}" x2="{width - pad}" y2="{base}" stroke="#9ca3af"/>')
    if plot.get("type") == "histogram":
        edges = plot.get("edges", [])
        if edges:
            parts.append(f'<text x="{pad}" y="{height - 4}" font-size="10" fill="#6b7280">{edges[0]:.4g}</text>')
            parts.append(
                f'<text x="{width - pad}" y="{height - 4}" font-size="10" fill="#6b7280" '
                f'text-anchor="end">{edges[-1]:.4g}</text>'
            )
    else:
        cats = plot.get("categories", [])
        for i, cat in enumerate(cats[:n]):
            label = html.escape(str(cat)[:8])
            parts.append(
                f'<text x="{pad + (i + 0.5) * slot:.2f}" y="{height - 4}" font-size="9" '
                f'fill="#6b7280" text-anchor="middle">{label}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict[str, Any], *, title: str | None = None) -> str:
    """The HTML page of a drift report given as :meth:`DriftReport.to_dict` data."""
    subject = report.get("subject") or "drift report"
    drift = bool(report.get("dataset_drift"))
    head = html.escape(title or f"Drift report: {subject}")
    rows = []
    cards = []
    for c in report.get("columns", []):
        cls = "bad" if c.get("drifted") else "ok"
        rows.append(
            f"<tr><td>{html.escape(str(c['column']))}</td><td>{_fmt(c.get('kind'))}</td>"
            f"<td>{_fmt(c.get('method'))}</td><td>{_fmt(c.get('score'))}</td>"
            f"<td>{_fmt(c.get('threshold'))}</td>"
            f"<td class='{cls}'>{'DRIFT' if c.get('drifted') else 'ok'}</td>"
            f"<td>{'yes' if c.get('exact') else 'sketch'}</td><td>{_fmt(c.get('n_reference'))}</td>"
            f"<td>{_fmt(c.get('n_current'))}</td></tr>"
        )
        extra = ""
        if c.get("plot", {}).get("other_categories"):
            extra = f"<div class='muted'>+{c['plot']['other_categories']} more categories</div>"
        cards.append(
            f"<div class='card'><b>{html.escape(str(c['column']))}</b> "
            f"<span class='{cls}'>{c.get('method')} = {_fmt(c.get('score'))}</span>"
            f"<div>{_svg(c.get('plot', {}))}</div>{extra}</div>"
        )
    skipped = "".join(
        f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in (report.get("skipped") or {}).items()
    )
    badge = (
        "<span class='badge bad'>DATASET DRIFT</span>" if drift else "<span class='badge ok'>no dataset drift</span>"
    )
    created = html.escape(str(report.get("created_at", "")))
    legend = f'<span style="background:{_REF}"></span>reference<span style="background:{_CUR}"></span>current'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{head}</title><style>{_CSS}</style></head>
<body>
<h1>{head}</h1>
<div class="muted">{created} · reference {_fmt(report.get("reference_rows"))} rows
 · current {_fmt(report.get("current_rows"))} rows</div>
<p>{badge} {_fmt(report.get("n_drifted"))} of {_fmt(report.get("n_columns"))} columns drifted
 (share {_fmt(report.get("share_drifted"))}; dataset drift at {_fmt(report.get("drift_share"))})</p>
<table><thead><tr><th>column</th><th>kind</th><th>method</th><th>score</th><th>threshold</th><th>verdict</th>
<th>exact</th><th>reference n</th><th>current n</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
<div class="legend muted">{legend}</div>
<div class="cols">{"".join(cards)}</div>
{f"<h3>Not monitored</h3><ul>{skipped}</ul>" if skipped else ""}
</body></html>
"""
