"""Is the toy testbed able to answer the cold-start question? Measure the starting model, per difficulty.

A cold-start experiment means something only if (a) the starting model has the skill, unreliably; (b) one
knob moves p0 = E_x P(y*|x) over decades; (c) a uniformly guessed answer is far less likely than the
smallest p0 (else "hedging" the answer beats reasoning); (d) the model is cheap to build. `measure_testbed`
measures each, `check_testbed` judges them with stated thresholds, and `tsallis llm testbed` prints both.

p0 is estimated without the variance that kills plain Monte Carlo at p0 ~ 1e-4: P(y*|x) splits into the
gold chain's term, computed exactly by teacher forcing, and the rest, sampled,

    P(y*|x) = p(z*, y*|x) + E_{z ~ p(z|x)} [ w(z) 1(z != z*) ],   w(z) = p(y*|x, z),

which is unbiased (the indicator removes exactly the term computed in closed form) and has small variance
because z* carries nearly all of P on this task. Sampling and scoring go through the trainer's `Policy` (the one
engine: budget forcing, row-keyed seeds); a sample whose delimiter was forced counts as "no delimiter written" in
the diagnostics and is scored with the delimiter, as the trainer does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tsallis.errors import InputError
from tsallis.llm.example import Example
from tsallis.llm.toy import DELIMITER, ToyTask, make_examples, next_digit

DEFAULT_LEVELS = (8, 11, 14, 17)
"""Chain lengths of the cold-start grid (ours): p0 ~ 0.55^n = 8e-3 .. 4e-5 for the default model."""


# ------------------------------------------------------------------------------------- sampling, scoring


@dataclass(frozen=True)
class Samples:
    """num_samples sampled completions per example, parsed (row i*M + m is example i, sample m)."""

    rationales: list[str]
    answers: list[str | None]  # None: the model wrote no delimiter (budget forcing wrote it)
    entropy: float  # mean per-token entropy (nats) of the sampled rationale tokens


def toy_policy(model, tok, examples: list[Example] | None = None, *, max_rationale_tokens: int | None = None,
               max_answer_tokens: int | None = None, temperature: float = 1.0):
    """The `Policy` of a toy model: delimiter ">", budgets from the examples (the gold chain's length + the
    register width for the rationale, width + 2 for the answer: what the studies train with)."""
    from tsallis.llm.policy import Policy

    width = len(examples[0].answer) if examples else 7
    longest = max((len(ex.rationale or "") for ex in examples or []), default=16)
    return Policy.build(model, tok, delimiter=DELIMITER, temperature=temperature,
                        max_rationale_tokens=max_rationale_tokens or longest + width,
                        max_answer_tokens=max_answer_tokens or width + 2)


def sample_chains(policy, examples: list[Example], num_samples: int, *, seed: int = 0,
                  batch_rows: int = 256) -> Samples:
    """num_samples completions per example from the policy (`evaluate.sample`: budget forcing, row-keyed seeds
    on the evaluation stream), parsed; the rationale entropy from one teacher-forced pass over the samples."""
    from tsallis.llm.evaluate import sample

    ro = sample(policy, examples, num_samples, seed=seed, batch_size=max(1, batch_rows // num_samples))
    rationales = [policy.tokenizer.decode(z, skip_special_tokens=False) for z in ro.rationale_ids]  # EOS: never in z
    answers = [None if f else (a or "") for f, a in zip(ro.forced, ro.answer_text)]
    sc = policy.score(examples, ro, "sampled", entropy=True, batch_rows=batch_rows)
    return Samples(rationales, answers, sc.entropy_sum / max(sc.entropy_count, 1))


def score_rows(policy, prompts: list, rationales: list[str], answers: list[str], *,
               batch_rows: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-forced (log p(z, delimiter | x), log p(y, EOS | x, z, delimiter)) of given rows, float64 (N,)."""
    ro = policy.given(prompts, rationales)
    sc = policy.score(prompts, ro, answers, batch_rows=batch_rows)
    return sc.log_pz, sc.log_w


def sample_completions(model, tok, examples: list[Example], num_samples: int, *, seed: int = 0,
                       batch_rows: int = 256, temperature: float = 1.0) -> Samples:
    """`sample_chains` with the toy Policy of `model` (T = `temperature`)."""
    return sample_chains(toy_policy(model, tok, examples, temperature=temperature), examples, num_samples,
                         seed=seed, batch_rows=batch_rows)


def completion_logps(model, tok, prompts: list[str], rationales: list[str], answers: list[str],
                     *, batch_rows: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """`score_rows` with the toy Policy of `model`: teacher-forced (log p(z, ">" | x), log p(y, EOS | x, z, ">"))
    per given (prompt, rationale, answer) row, float64 arrays (N,)."""
    return score_rows(toy_policy(model, tok), prompts, rationales, answers, batch_rows=batch_rows)


# ------------------------------------------------------------------------------------------- chain checks


def step_correctness(ex: Example, rationale: str) -> list[bool]:
    """Per step k < n: is the k-th written digit the correct step applied to the (sampled) digits before it?

    Missing steps, non-digits, and (on the last step) a rationale longer than n count as wrong."""
    width, n = len(ex.meta["init"]), ex.meta["n_steps"]
    seq, out = [int(c) for c in ex.meta["init"]], []
    for k in range(n):
        c = rationale[k] if k < len(rationale) else ""
        ok = c.isdigit() and int(c) == next_digit(seq, width)
        out.append(ok and len(rationale) == n if k == n - 1 else ok)
        seq.append(int(c) if c.isdigit() else -1)
    return out


def chain_diagnostics(examples: list[Example], samples: Samples, num_samples: int) -> dict[str, float]:
    """Sampled per-step accuracy, answer accuracy (vs the example's label), rationale accuracy (the gold chain),
    answer-copy rate (answer = the rationale's last register: no hedging), delimiter rate, rationale entropy."""
    steps, acc, rat, copy, fmt = [], [], [], [], []
    for i, ex in enumerate(examples):
        gold = ex.rationale
        for m in range(num_samples):
            z, y = samples.rationales[i * num_samples + m], samples.answers[i * num_samples + m]
            steps += step_correctness(ex, z)
            acc.append(y == ex.answer)
            rat.append(z == gold)
            copy.append(y is not None and y == (ex.meta["init"] + z)[-len(ex.answer):])
            fmt.append(y is not None)
    return {"per_step_accuracy": float(np.mean(steps)), "accuracy": float(np.mean(acc)),
            "rationale_accuracy": float(np.mean(rat)), "answer_copy_rate": float(np.mean(copy)),
            "delimiter_rate": float(np.mean(fmt)), "rationale_entropy": samples.entropy}


def p_hat(model, tok, examples: list[Example], samples: Samples, num_samples: int, *,
          labels: list[str] | None = None) -> dict[str, np.ndarray]:
    """`estimate_p` with the toy Policy of `model`."""
    return estimate_p(toy_policy(model, tok, examples), examples, samples, num_samples, labels=labels)


def estimate_p(policy, examples: list[Example], samples: Samples, num_samples: int, *,
               labels: list[str] | None = None) -> dict[str, np.ndarray]:
    """Per example: the stratified estimate of P(label|x) (gold-chain term exact + sampled rest), the gold
    term alone, and plain Monte Carlo mean_m w(z_m). `labels` default to each example's answer; the gold
    chain is only split off when the label is the chain's true answer (else there is no z*)."""
    labels = labels or [ex.answer for ex in examples]
    rows = [(ex, lab) for ex, lab in zip(examples, labels) for _ in range(num_samples)]
    _, log_w = score_rows(policy, [ex.prompt for ex, _ in rows], samples.rationales, [lab for _, lab in rows])
    log_w = log_w.reshape(len(examples), num_samples)
    has_gold = np.array([lab == ex.meta["clean_answer"] for ex, lab in zip(examples, labels)])
    lz, ly = score_rows(policy, [ex.prompt for ex in examples], [ex.rationale for ex in examples], labels)
    gold = np.where(has_gold, np.exp(lz + ly), 0.0)
    is_gold = np.array([z == ex.rationale and y is not None for (ex, _), z, y in
                        zip(rows, samples.rationales, samples.answers)]).reshape(len(examples), num_samples)
    rest = np.where(is_gold & has_gold[:, None], 0.0, np.exp(log_w)).mean(1)
    return {"stratified": gold + rest, "gold": gold, "plain": np.exp(log_w).mean(1)}


# ---------------------------------------------------------------------------------------- the testbed


DEFAULT_BATCH = (8, 8)
"""(prompts per step, M) of the experiments: expected correct samples per step = 64 p0."""


def measure_level(model, tok, task: ToyTask, *, num_samples: int, seed: int = 0) -> dict[str, Any]:
    """One difficulty level: p0 (stratified Monte Carlo, with the standard error over prompts), the gold
    term, plain MC, the median log P, the sampled per-step accuracy and the other chain diagnostics."""
    examples = make_examples(task, "eval")
    policy = toy_policy(model, tok, examples)
    samples = sample_chains(policy, examples, num_samples, seed=seed)
    ph = estimate_p(policy, examples, samples, num_samples)
    p, n = ph["stratified"], len(examples)
    p0 = float(p.mean())
    return {"difficulty": task.n_steps, "p0": p0, "p0_stderr": float(p.std(ddof=1) / math.sqrt(n)),
            "p0_gold_term": float(ph["gold"].mean()), "p0_plain_mc": float(ph["plain"].mean()),
            "median_log_p": float(np.median(np.log(np.maximum(p, 1e-300)))),
            "expected_hits_per_step": DEFAULT_BATCH[0] * DEFAULT_BATCH[1] * p0,
            **chain_diagnostics(examples, samples, num_samples), "n_prompts": n, "num_samples": num_samples}


@dataclass(frozen=True)
class TestbedReport:
    """What makes a cold-start experiment on the toy model meaningful, measured (see `check_testbed`)."""

    __test__ = False  # not a pytest class, despite its name

    model: str
    levels: list[dict[str, Any]]
    floor: float  # likelihood of a uniformly guessed answer, 10^-width
    irreducible_loss: float  # exact, nats per scored token of the pretraining distribution
    final_pretrain_loss: float  # held-out, same tokens
    pretrain_cpu_seconds: float
    cached: bool
    spec: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    # SHA-256 of the weight files: the same spec pretrained on another machine (other CPU kernels) is another model
    weights_sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "criteria": check_testbed(self)}


def measure_testbed(model: str = "toy", levels=DEFAULT_LEVELS, *, n_prompts: int = 64, num_samples: int = 16,
                    seed: int = 0, cache_dir: str | None = None, verbose: bool = True) -> TestbedReport:
    """Build (or load from the cache) the starting model and measure every level of the testbed."""
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tsallis.llm.toy import ToyModelSpec, model_info, pretrained_toy_model

    path = pretrained_toy_model(cache_dir=cache_dir, verbose=verbose) if model == "toy" else model
    info = model_info(path)
    if not info:
        raise InputError(f"model {str(path)!r} has no toy_spec.json: `tsallis llm testbed` measures toy models "
                         "pretrained by tsallis.llm.toy (use --model toy or a folder from `tsallis llm pretrain-toy`)")
    spec = ToyModelSpec(**{k: info[k] for k in ToyModelSpec.__dataclass_fields__})
    mdl = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    out = []
    for n in tqdm(list(levels), desc="testbed levels", disable=not verbose):
        task = ToyTask(n_steps=int(n), width=spec.width, n_eval=n_prompts, n_train=0)
        with torch.no_grad():
            out.append(measure_level(mdl, tok, task, num_samples=num_samples, seed=seed))
    cached = (Path(path) / "toy_spec.json").exists()
    return TestbedReport(str(path), out, 10.0 ** -spec.width, info["irreducible_loss"],
                         info["final_pretrain_loss"], info["pretrain_cpu_seconds"], cached, info,
                         {"n_prompts": n_prompts, "num_samples": num_samples, "seed": seed,
                          "batch_for_hits": list(DEFAULT_BATCH)}, weights_sha256(path))


def weights_sha256(path: str | Path) -> str:
    """One SHA-256 over a model folder's weight files (*.safetensors, *.bin; sorted by name), in hex: which exact
    model a testbed measured (pretraining is not bit-reproducible across CPUs)."""
    import hashlib

    from tsallis.llm.checkpoint import sha256

    files = sorted(p for p in Path(path).iterdir() if p.suffix in (".safetensors", ".bin"))
    if not files:
        raise InputError(f"model {str(path)!r} has no weight files (*.safetensors, *.bin)")
    return hashlib.sha256("".join(f"{p.name}:{sha256(p)};" for p in files).encode()).hexdigest()


CRITERIA = {
    "min_per_step_accuracy": 0.5,
    "max_loss_excess": 0.05,
    "p0_high_at_least": 5e-3,
    "p0_low_at_most": 1e-4,
    "min_decades": 2.0,
    "max_per_step_gap": 0.05,
    "min_floor_ratio": 100.0,
    "max_pretrain_cpu_seconds": 300.0,
}
"""Thresholds of the four testbed criteria (ours): a skill, a knob over two decades with p0 ~ a^n, a
floor far below p0, a cheap cached model. `max_per_step_gap`: |exp(fitted slope of log p0 vs n) - a|. The cost is
reported, never gating (`gates` False): CPU seconds measured once, while pretraining, depend on how busy the
machine was then, and would fail a good cached model forever."""


def check_testbed(report: TestbedReport, thresholds: dict[str, float] = CRITERIA) -> list[dict[str, Any]]:
    """Each criterion with its threshold, the measured value, whether it passed, and whether it `gates` (decides
    the verdict on the testbed; the pretraining cost only informs)."""
    t, lv = thresholds, report.levels
    acc = [x["per_step_accuracy"] for x in lv]
    p0 = np.array([x["p0"] for x in lv])
    n = np.array([x["difficulty"] for x in lv], dtype=float)
    a = float(np.mean(acc))
    slope = float(np.polyfit(n, np.log(p0), 1)[0]) if len(lv) >= 2 and np.all(p0 > 0) else float("nan")
    excess = report.final_pretrain_loss / report.irreducible_loss - 1
    decades = float(np.log10(p0.max() / p0.min())) if np.all(p0 > 0) else 0.0
    gap = abs(math.exp(slope) - a) if math.isfinite(slope) else float("inf")
    ratio = float(p0.min() / report.floor)
    rows = [
        (f"skill: per-step accuracy >= {t['min_per_step_accuracy']:g} at every level", min(acc),
         min(acc) >= t["min_per_step_accuracy"]),
        (f"skill: final pretraining loss within {100 * t['max_loss_excess']:g}% of the irreducible loss", excess,
         excess <= t["max_loss_excess"]),
        (f"knob: p0 from >= {t['p0_high_at_least']:g} down to <= {t['p0_low_at_most']:g}, spanning >= "
         f"{t['min_decades']:g} decades", decades, bool(p0.max() >= t["p0_high_at_least"]
                                                     and p0.min() <= t["p0_low_at_most"]
                                                     and decades >= t["min_decades"])),
        (f"knob: p0 ~ a^n, |exp(slope of log p0 vs n) - a| <= {t['max_per_step_gap']:g} "
         f"(a = mean per-step accuracy {a:.3f}, exp(slope) = {math.exp(slope):.3f})", gap,
         gap <= t["max_per_step_gap"]),
        (f"floor: uniform-answer likelihood >= {t['min_floor_ratio']:g}x below the smallest p0", ratio,
         ratio >= t["min_floor_ratio"]),
        (f"cost: pretraining <= {t['max_pretrain_cpu_seconds']:g} CPU s, and cached (reported, not gating: the "
         "time depends on the machine's load when it was measured)", report.pretrain_cpu_seconds,
         bool(report.pretrain_cpu_seconds <= t["max_pretrain_cpu_seconds"] and report.cached)),
    ]
    return [{"criterion": c, "value": float(v), "passed": bool(ok), "gates": not c.startswith("cost:")}
            for c, v, ok in rows]
