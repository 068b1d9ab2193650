"""Loaders: Markdown, text, HTML and PDF; metadata, access tags, failures and path checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiw.errors import InvalidInputError
from aiw.rag.loaders import discover, load_document, parse_front_matter

pytestmark = pytest.mark.unit


def _pdf(text_lines: list[str], title: str = "Fleet Policy") -> bytes:
    """A minimal valid one-page PDF with a text layer (Helvetica), built by hand."""
    content = "BT /F1 12 Tf 72 720 Td " + " ".join(f"({line}) Tj 0 -16 Td" for line in text_lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({title}) >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_markdown_with_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "home.md"
    path.write_text(
        "---\ntitle: Home Policy\naccess: internal, Finance\ndoc_type: policy\n---\n"
        "# Home insurance\n\nIntro.\n\n## Exclusions\n\nFlood.\n"
    )
    doc = load_document(path)
    assert doc.title == "Home Policy"
    assert doc.access_tags == ("internal", "finance")
    assert doc.metadata == {"doc_type": "policy"}
    assert doc.headings == ("Home insurance", "Exclusions")
    assert doc.text.startswith("# Home insurance") and "access" not in doc.text
    assert doc.source == str(path.resolve()) and len(doc.id) == 24 and len(doc.content_hash) == 64
    assert doc.modified.endswith("+00:00")
    # The hash follows the content and the access tags.
    before = doc.content_hash
    path.write_text(path.read_text().replace("access: internal, Finance", "access: public"))
    assert load_document(path).content_hash != before


def test_markdown_without_front_matter_defaults(tmp_path: Path) -> None:
    path = tmp_path / "auto-faq.md"
    path.write_text("# Auto FAQ\n\nIs glass covered? Yes.")
    doc = load_document(path)
    assert doc.title == "Auto FAQ" and doc.access_tags == ("public",)
    assert load_document(path, default_access_tags=("internal",)).access_tags == ("internal",)


def test_plain_text_and_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Claims handling notes\n\nPay within 30 days.")
    (tmp_path / "notes.txt.meta.json").write_text(json.dumps({"access_tags": ["internal"], "owner": "claims"}))
    doc = load_document(path)
    assert doc.title == "Claims handling notes" and doc.access_tags == ("internal",)
    assert doc.metadata == {"owner": "claims"}


def test_html_keeps_headings_title_and_drops_scripts(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Travel cover</title><meta name='aiw:access' content='internal'>"
        "<style>p{}</style><script>alert('x')</script></head><body>"
        "<h1>Travel</h1><p>Medical costs are <b>covered</b>.</p><h2>Exclusions</h2>"
        "<ul><li>Extreme sports</li><li>War</li></ul></body></html>"
    )
    doc = load_document(path)
    assert doc.title == "Travel cover" and doc.access_tags == ("internal",)
    assert doc.headings == ("Travel", "Exclusions")
    assert "# Travel" in doc.text and "## Exclusions" in doc.text
    assert "Medical costs are covered." in doc.text and "alert" not in doc.text and "p{}" not in doc.text


def test_pdf_text_layer_and_title(tmp_path: Path) -> None:
    path = tmp_path / "fleet.pdf"
    path.write_bytes(_pdf(["Fleet policy wording.", "Each vehicle has a deductible."]))
    doc = load_document(path)
    assert doc.title == "Fleet Policy"
    assert "Fleet policy wording." in doc.text and "deductible" in doc.text
    assert doc.metadata == {"pages": "1"}


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.md", b"", "no text"),
        ("blank.txt", b"   \n\n  ", "no text"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "cannot be read|not a readable PDF|no text"),
        ("badtags.md", b"---\naccess: bad tag!\n---\nbody", "Invalid access tags"),
    ],
)
def test_unreadable_files_name_the_file(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InvalidInputError, match=reason) as info:
        load_document(path)
    assert name in str(info.value)


def test_discover_walks_folders_and_checks_paths(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.md").write_text("x")
    (tmp_path / "a" / "two.html").write_text("<p>x</p>")
    (tmp_path / "a" / "skip.csv").write_text("x")
    (tmp_path / "a" / ".hidden").mkdir()
    (tmp_path / "a" / ".hidden" / "h.md").write_text("x")
    files, roots = discover([tmp_path / "a"])
    assert [f.name for f in files] == ["one.md", "two.html"] and roots == [(tmp_path / "a").resolve()]
    with pytest.raises(InvalidInputError, match="does not exist"):
        discover([tmp_path / "nope"])
    with pytest.raises(InvalidInputError, match="not a supported"):
        discover([tmp_path / "a" / "skip.csv"])
    with pytest.raises(InvalidInputError, match="escapes"):
        discover(["../../etc"], root=tmp_path / "a")
    with pytest.raises(InvalidInputError, match="at least one"):
        discover([])


def test_front_matter_parser_edge_cases() -> None:
    assert parse_front_matter("no front matter") == ({}, "no front matter")
    with pytest.raises(InvalidInputError, match="not closed"):  # once read as text, leaking its 'access' line
        parse_front_matter("---\nunterminated: yes\n")
    fields, body = parse_front_matter("---\ntags: [a, 'b']\nTitle: \"X\"\n---\nbody")
    assert fields == {"tags": "a, b", "title": "X"} and body == "body"
