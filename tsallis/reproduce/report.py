"""Render the stage results as `report.md` (and a plain `report.html`) with the claims table."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from tsallis.files import atomic_write_text
from tsallis.reproduce.claims import PAPER_SCALE, claim_records
from tsallis.reproduce.pipeline import StageResult
from tsallis.verdict import UNTESTABLE


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


def _seconds(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def undecided_at_this_size(results: list[StageResult]) -> list[str]:
    """Lines naming each claim this run could not decide though a larger run could (paper-scale ones aside)."""
    return [f"- **{rec['id']}**: " + _cell("; ".join(p["text"] for p in rec["evidence"]) or "no evidence in this run")
            for rec in claim_records(results) if rec["verdict"] == UNTESTABLE and rec["id"] not in PAPER_SCALE]


def write_report(results: list[StageResult], out: Path, *, quick: bool, seconds: float,
                 cpu_seconds: float | None = None) -> Path:
    """Write report.md, report.html and claims.json (the claims table as data) into `out`; return report.md.

    `seconds` is the run's wall time, `cpu_seconds` its CPU time (this process and its children)."""
    cpu = "" if cpu_seconds is None else f", {cpu_seconds:.0f} s CPU"
    stage_wall = sum(r.seconds for r in results)
    stage_cpu = None if any(r.cpu_seconds is None for r in results) else sum(r.cpu_seconds for r in results)
    stages_total = f"{stage_wall:.0f} s wall" + ("" if stage_cpu is None else f", {stage_cpu:.0f} s CPU")
    notes = [f"Stage '{r.title}' {r.timing_note}." for r in results if r.timing_note]
    undecided = undecided_at_this_size(results)
    md = [
        "# tsallis reproduce: the Tsallis loss continuum, checked",
        "",
        f"Mode: {'quick' if quick else 'default'}; the stages took {stages_total} on this machine (each when it "
        f"ran: a rerun reuses finished stages); this command ran {seconds:.0f} s wall{cpu}. "
        "Paper: Lin & Ie, *How Fast Should a Model Commit to Supervision?*, arXiv 2604.25907.",
        *(["", *notes] if notes else []),
        "",
        "## Claims",
        "",
        "Each verdict is derived by a library function from what a stage measured, by the criterion printed "
        "beside it; a claim with several pieces of evidence takes the weakest (does not hold < holds with an "
        "extra assumption < holds as a bound (not tight) < holds). The same table is in "
        "[claims.json](claims.json).",
        "",
        *([("At --quick size these claims cannot be decided (each says why); run without --quick to decide "
            "them:" if quick else "This run could not decide these claims (each says why):"), "", *undecided, ""]
          if undecided else []),
        *claims_table(results),
        "",
        "## Stages",
        "",
        "| stage | result | wall s | CPU s |",
        "|---|---|---|---|",
        *[f"| {r.title} | {_cell(r.summary + (f' ({r.timing_note})' if r.timing_note else ''))} | "
          f"{_seconds(r.seconds)} | {_seconds(r.cpu_seconds)} |" for r in results],
        "",
        "Click a figure for its full-size file.",
        "",
    ]
    for r in results:
        md += [f"## {r.title}", "", r.summary, ""]
        md += [f"[![{Path(f).stem}]({f})]({f})" for f in r.figures]
        if r.data:
            md += ["", "Data: " + ", ".join(f"[{Path(d).name}]({d})" for d in r.data)]
        md.append("")
    path = out / "report.md"
    atomic_write_text(out / "claims.json", json.dumps(claim_records(results), indent=1))
    atomic_write_text(path, "\n".join(md))
    atomic_write_text(out / "report.html", markdown_to_html("\n".join(md)))
    return path


def markdown_to_html(md: str) -> str:
    """Just enough Markdown for this report: headings, tables, lists, images, links, bold, italics. An image is
    shown at most 720 px wide; the report links each to its full-size file."""

    def inline(s: str) -> str:
        s = html.escape(s, quote=False).replace("\\|", "|").replace("\\*", "\x00").replace("&lt;br&gt;", "<br>")
        s = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r'<img alt="\1" src="\2" style="max-width:720px">', s)
        s = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', s)
        s = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)
        return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", s).replace("\x00", "*")

    body, table, items = [], [], []
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
        if line.startswith("- "):
            items.append(f"<li>{inline(line[2:])}</li>")
            continue
        if items:
            body.append("<ul>" + "".join(items) + "</ul>")
            items = []
        m = re.match(r"(#+) (.*)", line)
        if m:
            n = len(m.group(1))
            body.append(f"<h{n}>{inline(m.group(2))}</h{n}>")
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    return ("<!doctype html><meta charset=utf-8><title>tsallis reproduce</title>"
            "<body style='font-family:sans-serif;max-width:1100px;margin:auto'>" + "\n".join(body) + "</body>")


DOCS_FILES = {  # docs/figures name -> the file of a default-size run (README and docs/simulate.md show these)
    "claims.json": "claims.json",
    "escape_sigmoid.png": "escape/escape_sigmoid.png",
    "schedules.png": "schedules/schedules.png",
    "bias_expansion.png": "estimators/bias_expansion.png",
    "bias_expansion.csv": "estimators/bias_expansion.csv",
    "bias_cold_start.png": "estimators/bias_cold_start.png",
    "bias_cold_start.csv": "estimators/bias_cold_start.csv",
    "adam_dataset.png": "train/adam_dataset.png",
    "adam_dataset.csv": "train/adam_dataset.csv",
    "adam_single.csv": "train/adam_single.csv",
}


def write_docs(out: Path, docs: Path) -> list[Path]:
    """Copy a finished default-size run's claims table and the docs figures from `out` into `docs`
    (`tsallis reproduce --docs docs/figures`), each atomically; return the paths written."""
    from tsallis.errors import InputError
    from tsallis.files import atomic_write

    missing = [src for src in DOCS_FILES.values() if not (out / src).is_file()]
    if missing:
        raise InputError(f"--docs: {out} lacks {', '.join(missing)}; run every stage at default size first")
    docs.mkdir(parents=True, exist_ok=True)
    written = []
    for name, src in DOCS_FILES.items():
        with atomic_write(docs / name, "wb") as fh:
            fh.write((out / src).read_bytes())
        written.append(docs / name)
    return written
