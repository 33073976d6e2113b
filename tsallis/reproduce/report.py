"""Render the stage results as `report.md` (and a plain `report.html`) with the claims table."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from tsallis.files import atomic_write_text
from tsallis.reproduce.claims import claim_records
from tsallis.reproduce.pipeline import StageResult


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("\n", " ")


def claims_table(results: list[StageResult]) -> list[str]:
    """The claims table: each claim with its evidence pieces (kind, outcome, measurement, link), each piece's
    criterion and regime, and the combined verdict (with the added assumption where there is one)."""
    lines = ["| claim | paper | evidence | criterion and regime | verdict |", "|---|---|---|---|---|"]
    for rec in claim_records(results):
        ev, crit = [], []
        for p in rec["evidence"]:
            link = f" ([{Path(p['file']).name}]({p['file']}))" if p["file"] else ""
            ev.append(f"*{p['kind']}* ({p['verdict']}): {_cell(p['text'])}{link}")
            crit.append(f"*{p['kind']}*: {_cell(p['criterion'])}" + (f"; regime: {_cell(p['regime'])}" if p["regime"]
                                                                     else ""))
        verdict = f"**{rec['verdict']}**" + (f": {_cell(rec['assumption'])}" if rec["assumption"] else "")
        lines.append(f"| **{rec['id']}**: {_cell(rec['claim'])} | {rec['where']} | {'<br>'.join(ev) or '—'} | "
                     f"{'<br>'.join(crit) or '—'} | {verdict} |")
    return lines


def write_report(results: list[StageResult], out: Path, *, quick: bool, seconds: float) -> Path:
    """Write report.md, report.html and claims.json (the claims table as data) into `out`; return report.md."""
    md = [
        "# tsallis reproduce: the Tsallis loss continuum, checked",
        "",
        f"Mode: {'quick' if quick else 'default'}; total {seconds:.0f} s on this machine's CPU. "
        "Paper: Lin & Ie, *How Fast Should a Model Commit to Supervision?*, arXiv 2604.25907.",
        "",
        "## Claims",
        "",
        "Each verdict is derived by a library function from what a stage measured, by the criterion printed "
        "beside it; a claim with several pieces of evidence takes the weakest (does not hold < holds with an "
        "extra assumption < holds as a bound (not tight) < holds). The same table is in "
        "[claims.json](claims.json).",
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
    atomic_write_text(out / "claims.json", json.dumps(claim_records(results), indent=1))
    atomic_write_text(path, "\n".join(md))
    atomic_write_text(out / "report.html", markdown_to_html("\n".join(md)))
    return path


def markdown_to_html(md: str) -> str:
    """Just enough Markdown for this report: headings, tables, images, links, bold, italics."""

    def inline(s: str) -> str:
        s = html.escape(s, quote=False).replace("\\|", "|").replace("\\*", "\x00").replace("&lt;br&gt;", "<br>")
        s = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r'<img alt="\1" src="\2" style="max-width:720px">', s)
        s = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', s)
        s = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)
        return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", s).replace("\x00", "*")

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
