"""Paper-scale claims (`paper-tables`, `garl-collapse`) judged from finished runs of the paper's configs.

A user with Qwen3-0.6B and the datasets trains `configs/paper/*.yaml` runs (each a folder with `run_config.json`,
`config.json` in runs written before the rename, and `metrics.jsonl`), evaluates the chosen checkpoints on the
test split (`tsallis llm eval RUN --split test` writes `RUN/eval/eval_*_test_k16.json`), and points
`tsallis reproduce --paper RUNS_DIR` at the folder that holds the runs. The verdicts below read what is there;
what is missing is named, and with nothing to read the outcome is "not testable here".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from tsallis.errors import InputError
from tsallis.verdict import FAILS, HOLDS, UNTESTABLE, Verdict

DATASETS = ("finqa", "hotpotqa", "musique")
COLLAPSE_FRACTION = 0.5
"""A run has collapsed when its validation metric, after its best evaluation, falls below this fraction of
that best and stays there to the end of the run."""
BEAT_Z = 2.0
"""'Beats' means a test-metric gap above this many standard errors (two independent binomial means)."""
TEST_METRIC = "maj@16"
"""The paper's headline test metric (m@16), from 16 samples."""


@dataclass(frozen=True)
class PaperRun:
    """One finished run: its setting from its run config, validation curve from metrics.jsonl, test evaluation."""

    path: str
    task: str
    start: str          # "cold" or "warm" (config prompt_style)
    method: str
    q: float
    curve: list = field(default_factory=list)   # [(step, validation metric)]
    test: dict | None = None                    # {"value": float, "n": int} for TEST_METRIC on the test split

    @property
    def label(self) -> str:
        return f"{self.task} {self.start} {self.method}" + ("" if self.method == "grpo" else f" q={self.q:g}")


def _test_result(run: Path) -> dict | None:
    for f in sorted((run / "eval").glob("eval_*_test_*.json")) if (run / "eval").is_dir() else []:
        try:
            d = json.loads(f.read_text())
            value = float(d["metrics"][TEST_METRIC])
            n = int(d["metrics"].get("n_examples", len(d.get("records", ()))))
        except (ValueError, KeyError, TypeError):
            continue
        if n > 0 and math.isfinite(value):
            return {"value": value, "n": n, "file": str(f)}
    return None


def read_paper_runs(runs_dir: str | Path) -> list[PaperRun]:
    """Every run folder (run config + metrics.jsonl, `rundir.is_run_folder`; a run written before the rename keeps
    its config in config.json) up to two levels below `runs_dir`.

    Raises:
        InputError: `runs_dir` is not a folder.
    """
    from tsallis.llm.rundir import LEGACY_RUN_CONFIG_FILE, METRICS_FILE, run_config_path
    from tsallis.llm.tracking import read_metrics

    root = Path(runs_dir).expanduser()
    if not root.is_dir():
        raise InputError(f"--paper {str(runs_dir)!r} is not a folder; give the folder that holds the paper-config "
                         f"runs (each with run_config.json and {METRICS_FILE})")
    runs = []
    for metrics in sorted([*root.glob(METRICS_FILE), *root.glob(f"*/{METRICS_FILE}"),
                           *root.glob(f"*/*/{METRICS_FILE}")]):
        run, cfg = metrics.parent, run_config_path(metrics.parent)
        if cfg is None:  # a config.json that is neither our run config nor a model's is named below
            cfg = run / LEGACY_RUN_CONFIG_FILE
            if not cfg.is_file() or _is_model_config(cfg):
                continue
        try:
            c = json.loads(cfg.read_text())
            task, method, start = str(c["task"]), str(c["method"]), str(c.get("prompt_style", ""))
            q = float(c.get("q", 0.0))
            metric = str(c.get("eval_metric", "eval/maj@16"))
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(f"{cfg}: not a tsallis run config ({err}); remove it from {root} or repair it") from None
        curve = [(int(r["step"]), float(r[metric])) for r in read_metrics(run / METRICS_FILE)
                 if metric in r and "step" in r and r[metric] is not None]
        runs.append(PaperRun(str(run), task, start, method, q, curve, _test_result(run)))
    return runs


def _is_model_config(path: Path) -> bool:
    try:
        return "model_type" in json.loads(path.read_text())
    except (OSError, ValueError, TypeError):
        return False


def _find(runs, task, start, method, q=None):
    return [r for r in runs if r.task == task and r.start == start and r.method == method
            and (q is None or abs(r.q - q) < 1e-9)]


def paper_tables_verdict(runs: list[PaperRun]) -> Verdict:
    """Claim `paper-tables` (Tables 2-3): cold-start GARL q = 0.75 beats prompted (warm-start) GRPO on the test
    maj@16, on every dataset for which both runs have a test evaluation."""
    rows, missing = [], []
    for task in DATASETS:
        garl = [r for r in _find(runs, task, "cold", "garl", 0.75) if r.test]
        grpo = [r for r in _find(runs, task, "warm", "grpo") if r.test]
        if not garl or not grpo:
            missing.append(f"{task}: " + " and ".join(
                n for n, ok in (("cold GARL q=0.75 with a test eval", garl), ("warm GRPO with a test eval", grpo))
                if not ok))
            continue
        a, b = garl[0].test, grpo[0].test
        se = math.sqrt(a["value"] * (1 - a["value"]) / a["n"] + b["value"] * (1 - b["value"]) / b["n"])
        z = (a["value"] - b["value"]) / se if se > 0 else (math.inf if a["value"] > b["value"] else 0.0)
        rows.append({"task": task, "garl": a["value"], "grpo": b["value"], "z": z, "n": a["n"]})
    criterion = (f"on each dataset with both runs evaluated: test {TEST_METRIC} of cold-start GARL q=0.75 exceeds "
                 f"warm-start (prompted) GRPO's by more than {BEAT_Z:g} SE (binomial, two independent runs); holds "
                 "when it does on every such dataset; not testable when no dataset has both")
    if not rows:
        return Verdict("paper-tables", UNTESTABLE, criterion=criterion,
                       evidence="missing: " + "; ".join(missing) + ". Train configs/paper/<dataset>_cold.yaml "
                       "(GARL q=0.75) and <dataset>_warm.yaml with method=grpo, evaluate each with `tsallis llm "
                       "eval RUN --split test`, then pass the folder to `tsallis reproduce --paper`",
                       regime="paper-scale runs (Qwen3-0.6B); none found", data={"missing": missing})
    ok = all(r["z"] > BEAT_Z for r in rows)
    return Verdict(
        "paper-tables", HOLDS if ok else FAILS, criterion=criterion,
        evidence="; ".join(f"{r['task']}: GARL {r['garl']:.3f} vs GRPO {r['grpo']:.3f} ({r['z']:+.1f} SE, "
                           f"n = {r['n']})" for r in rows) + (f"; missing: {'; '.join(missing)}" if missing else ""),
        regime=f"paper-config runs on {', '.join(r['task'] for r in rows)}", data={"rows": rows, "missing": missing})


def collapsed(curve: list) -> bool | None:
    """Whether a validation curve collapses: after its best evaluation it falls below COLLAPSE_FRACTION of the
    best and ends there. None with fewer than 3 evaluations or a best of 0 (nothing to collapse from)."""
    if len(curve) < 3:
        return None
    values = [v for _, v in sorted(curve)]
    best = max(values)
    if best <= 0:
        return None
    after = values[values.index(best) + 1:]
    return bool(after) and min(after) < COLLAPSE_FRACTION * best and after[-1] < COLLAPSE_FRACTION * best


def garl_collapse_verdict(runs: list[PaperRun]) -> Verdict:
    """Claim `garl-collapse` (Sec. 7.3, Fig. 4): warm-start GARL collapses on HotpotQA and MuSiQue while PAFT
    stays stable, judged on the validation curves of the runs present."""
    rows, missing = [], []
    for task in ("hotpotqa", "musique"):
        garl = [r for r in _find(runs, task, "warm", "garl") if collapsed(r.curve) is not None]
        paft = [r for r in _find(runs, task, "warm", "paft") if collapsed(r.curve) is not None]
        if not garl or not paft:
            missing.append(f"{task}: " + " and ".join(
                n for n, ok in (("warm GARL with >= 3 evaluations", garl), ("warm PAFT with >= 3 evaluations", paft))
                if not ok))
            continue
        rows.append({"task": task, "garl": {r.label: collapsed(r.curve) for r in garl},
                     "paft": {r.label: collapsed(r.curve) for r in paft}})
    criterion = (f"collapse = after its best evaluation the validation metric falls below {COLLAPSE_FRACTION:g} x "
                 "the best and ends there; holds when on each of HotpotQA/MuSiQue present some warm GARL run "
                 "collapses and no warm PAFT run does; not testable when neither dataset has both")
    if not rows:
        return Verdict("garl-collapse", UNTESTABLE, criterion=criterion,
                       evidence="missing: " + "; ".join(missing) + ". Train configs/paper/{hotpotqa,musique}_warm.yaml "
                       "with method=garl and method=paft and pass the folder to `tsallis reproduce --paper`",
                       regime="paper-scale runs (Qwen3-0.6B); none found", data={"missing": missing})
    ok = all(any(r["garl"].values()) and not any(r["paft"].values()) for r in rows)
    return Verdict(
        "garl-collapse", HOLDS if ok else FAILS, criterion=criterion,
        evidence="; ".join(f"{r['task']}: GARL collapsed {sum(r['garl'].values())}/{len(r['garl'])}, PAFT collapsed "
                           f"{sum(r['paft'].values())}/{len(r['paft'])}" for r in rows)
        + (f"; missing: {'; '.join(missing)}" if missing else ""),
        regime=f"paper-config warm-start runs on {', '.join(r['task'] for r in rows)}",
        data={"rows": rows, "missing": missing})
