"""Render the stage results as `report.md` (and a plain `report.html`) with the claims table."""

from __future__ import annotations

import html
import re
from pathlib import Path

from tsallis.files import atomic_write_text
from tsallis.reproduce.claims import CLAIMS, combine
from tsallis.reproduce.pipeline import StageResult


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def claims_table(results: list[StageResult]) -> list[str]:
    lines = ["| claim | paper | evidence | verdict |", "|---|---|---|---|"]
    for cid, (where, statement) in CLAIMS.items():
        ev = [e for r in results for e in r.evidence if e.claim == cid]
        parts = []
        for e in ev:
            link = f" ([{Path(e.link).name}]({e.link}))" if e.link else ""
            parts.append(f"*{e.kind}*: {_cell(e.text)}{link}")
        lines.append(f"| **{cid}**: {_cell(statement)} | {where} | {'<br>'.join(parts) or '—'} | "
                     f"**{combine(ev)}** |")
    return lines


def write_report(results: list[StageResult], out: Path, *, quick: bool, seconds: float) -> Path:
    md = [
        "# tsallis reproduce: the Tsallis loss continuum, checked",
        "",
        f"Mode: {'quick' if quick else 'default'}; total {seconds:.0f} s on this machine's CPU. "
        "Paper: Lin & Ie, *How Fast Should a Model Commit to Supervision?*, arXiv 2604.25907.",
        "",
        "## Claims",
        "",
        *claims_table(results),
        "",
        "## Stages",
        "",
        "| stage | result | seconds |",
        "|---|---|---|",
        *[f"| {r.title} | {_cell(r.summary)} | {r.seconds:.1f} |" for r in results],
        "",
    ]
    for r in results:
        md += [f"## {r.title}", "", r.summary, ""]
        md += [f"![{Path(f).stem}]({f})" for f in r.figures]
        if r.data:
            md += ["", "Data: " + ", ".join(f"[{Path(d).name}]({d})" for d in r.data)]
        md.append("")
    path = out / "report.md"
    atomic_write_text(path, "\n".join(md))
    atomic_write_text(out / "report.html", markdown_to_html("\n".join(md)))
    return path


def markdown_to_html(md: str) -> str:
    """Just enough Markdown for this report: headings, tables, images, links, bold, italics."""

    def inline(s: str) -> str:
        s = html.escape(s, quote=False).replace("\\|", "|").replace("&lt;br&gt;", "<br>")
        s = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r'<img alt="\1" src="\2" style="max-width:720px">', s)
        s = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', s)
        s = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)
        return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", s)

    body, table = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(set(c) <= {"-", ":"} for c in cells):
                table.append(cells)
            continue
        if table:
            head, *rows = table
            body.append("<table border=1 cellpadding=4><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head)
                        + "</tr>" + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>"
                                            for r in rows) + "</table>")
            table = []
        m = re.match(r"(#+) (.*)", line)
        if m:
            n = len(m.group(1))
            body.append(f"<h{n}>{inline(m.group(2))}</h{n}>")
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    return ("<!doctype html><meta charset=utf-8><title>tsallis reproduce</title>"
            "<body style='font-family:sans-serif;max-width:1100px;margin:auto'>" + "\n".join(body) + "</body>")
