"""One-shot GPU cold-start session: pretrain a stronger toy model, measure p0, run GRPO / GARL / PAFT (+ label noise).

    OUT=/some/dir python benchmarks/gpu_cold_start.py            # CUDA (one H100): ~6 minutes, hard deadlines
    GPU_SESSION_TINY=1 OUT=/tmp/o python benchmarks/gpu_cold_start.py   # CPU smoke mode (< 3 min on 2 cores)

Normally started by `benchmarks/gpu_session.sh` (which runs `bench_llm_gpu.py` first and exports
GPU_SESSION_T0, the session's start, so every deadline here counts from the start of the whole session).

Phases (each with a wall-clock deadline; the JSON is rewritten after every phase, `status` says how far it got):

1. workers: one process per RL run is spawned at once (torch threads = 1, nice +5); they import torch and
   transformers and initialise CUDA while the pretraining runs, then wait for `ready.json`.
2. pretrain: a random-init GPT-2 (4 layers, d=128 on GPU) on *sloppy* warm-format rationales of the toy
   register machine (`tsallis.llm.toy`, same distribution as `pretrain_toy_model`, n_steps uniform in 0..length),
   with a vectorised numpy sampler that writes token ids directly (fixed length, no padding), batch 1024, AdamW
   2e-3, warmup 200 steps then cosine decay *in wall-clock time* to the phase deadline. Task: width 4, length 8,
   sloppiness 0.9 (NOT the toy defaults 3/6/0.75: with a register of w slots, each touched slot is right with
   probability 0.1 + 0.9 (1 - s)^k_slot >= 0.1, so at width 3 / length 6 / s 0.75 the exact p0 of the sloppy
   distribution bottoms out near 1e-2 at n_steps=6 and p0 ~ 1e-3 is out of reach; at 4/8/0.9 the exact p0 is
   1.9e-1, 5e-2, 2e-2, 9e-3, 4e-3, 2.5e-3, 1.6e-3, 1.1e-3 for n_steps = 1..8).
3. diagnose: sampled rationales of the pretrained model (T=1) -> per-step accuracy on nonzero instructions
   (intended a = 1 - 0.9 * sloppiness = 0.19), no-op fidelity, format rate, answer-copies-last-register rate;
   p0 = mean P-hat (64 rationales per prompt) for n_steps = 0..8, beside the exact p0 of the sloppy distribution
   (prod over slots of 0.1 + 0.9 (1 - s)^k_slot). RULE: the cold-start difficulty is the n_steps in {6, 7, 8}
   whose measured p0 is closest to 1e-3 in |log10 p0 + 3|.
4. RL: all runs in parallel until the RL deadline; each stops cleanly before it (and reports the steps it did),
   writing its JSON after every evaluation. Cold start: GRPO, GARL q in {0, .5, .75, 1} (RLOO, pathwise), PAFT
   q=.75 (K=M), 3 seeds. Label noise: GARL q in {0, .5, 1}, eps=0.2, n_steps=2, 64 training examples, 3 seeds.
5. aggregate: curves on the evaluation steps common to all runs of an experiment, escape steps, PNGs.

Hyperparameters are fixed in `settings()` below (chosen once, before any GPU result). Escape = first evaluation
with held-out accuracy >= 0.1 (the sampled answer, 2 samples x 128 prompts at T=1); also reported: the first
evaluation with held-out mean P-hat >= 0.1, and the *rationale* accuracy (the rationale's last register equals y*),
which separates real reasoning from answer hedging.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TINY = os.environ.get("GPU_SESSION_TINY", "0") == "1"
ESCAPE_ACCURACY = 0.1
ESCAPE_P_HAT = 0.1
TARGET_P0 = 1e-3


def settings(tiny: bool) -> dict:
    """Every hyperparameter of the session (fixed up front; tiny = CPU smoke sizes, same code path)."""
    s = {
        "budget_s": 470.0,  # whole session (bench included) from GPU_SESSION_T0
        "aggregate_reserve_s": 25.0,  # kept for aggregation + plots after the RL deadline
        "min_rl_s": 120.0,  # pretraining and diagnosis are cut short so that RL keeps at least this long
        "pretrain": {"n_layer": 4, "n_embd": 128, "n_head": 4, "n_positions": 128, "width": 4, "length": 8,
                     "sloppiness": 0.9, "batch_size": 1024, "lr": 2e-3, "warmup_steps": 200, "min_lr_frac": 0.1,
                     "weight_decay": 0.0, "max_grad_norm": 1.0, "max_steps": 50000, "time_s": 80.0, "seed": 0},
        "diagnose": {"n_prompts": 64, "p0_samples": 64, "difficulties": [0, 1, 2, 3, 4, 5, 6, 7, 8],
                     "candidates": [6, 7, 8], "rationale_samples": 4, "time_s": 45.0},
        "cold": {"methods": [["grpo", 0.0], ["garl", 0.0], ["garl", 0.5], ["garl", 0.75], ["garl", 1.0],
                             ["paft", 0.75]],
                 "seeds": [0, 1, 2], "max_steps": 200, "eval_every": 10, "toy_n_train": 2048, "toy_n_eval": 128,
                 "eval_samples": 2, "p_hat_prompts": 32, "p_hat_samples": 16},
        "noise": {"enabled": os.environ.get("GPU_SESSION_NOISE", "1") == "1", "qs": [0.0, 0.5, 1.0],
                  "seeds": [0, 1, 2], "eps": 0.2, "n_steps": 2, "toy_n_train": 64, "max_steps": 200,
                  "eval_every": 10, "toy_n_eval": 128, "eval_samples": 2, "train_samples": 4,
                  "num_generations": 8, "prompts_per_step": 8},
        "train": {"learning_rate": 3e-4, "num_generations": 16, "prompts_per_step": 16, "max_rationale_tokens": 40,
                  "max_answer_tokens": 6, "temperature": 1.0, "dtype": "float32", "lr_scheduler": "constant",
                  "baseline": "rloo", "pathwise": True, "normalize": True, "loss_type": "dapo",
                  "scale_rewards": "group", "epsilon": 0.2, "beta": 0.0, "max_grad_norm": 1.0, "style": "warm"},
    }
    budget = os.environ.get("GPU_SESSION_BUDGET")
    if budget is not None and not tiny and float(budget) < 480:  # a shorter session: scale the phases to it
        frac = float(budget) / 480.0
        s["budget_s"] = float(budget) - 10.0
        s["aggregate_reserve_s"] = 12.0
        s["min_rl_s"] = 120.0 * frac
        s["pretrain"]["time_s"] = 80.0 * frac
        s["diagnose"]["time_s"] = 45.0 * frac
    if tiny:
        s["budget_s"] = 170.0
        s["aggregate_reserve_s"] = 15.0
        s["min_rl_s"] = 45.0
        s["pretrain"].update(n_layer=2, n_embd=64, batch_size=64, warmup_steps=20, time_s=20.0)
        s["diagnose"].update(n_prompts=8, p0_samples=8, difficulties=[1, 6, 7, 8], rationale_samples=2, time_s=20.0)
        s["cold"].update(methods=[["grpo", 0.0], ["garl", 0.75], ["paft", 0.75]], seeds=[0], max_steps=4,
                         eval_every=2, toy_n_train=64, toy_n_eval=16, eval_samples=1,
                         p_hat_prompts=4, p_hat_samples=4)
        s["noise"].update(qs=[0.5], seeds=[0], max_steps=4, eval_every=2, toy_n_train=16, toy_n_eval=16, eval_samples=1,
                          train_samples=1, num_generations=4, prompts_per_step=4)
        s["train"].update(num_generations=4, prompts_per_step=4)
    return s


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(x):
    try:
        return float(x)
    except Exception:
        return str(x)


def _r(x, nd: int = 5):
    """Round floats for compact JSON (NaN/inf -> None)."""
    if isinstance(x, float):
        return round(x, nd) if math.isfinite(x) else None
    return x


# ------------------------------------------------------------------------------ vectorised sloppy data


class SloppySampler:
    """Token-id batches of the sloppy warm-format toy texts: prompt + rationale + '>' + answer + <eos>.

    Same distribution as `tsallis.llm.toy._pretrain_text` (n_steps ~ U{0..length}, the active instructions a random
    subset, slot uniform, digit 1..9 when active, each active step applied as a uniform random digit with
    probability `sloppiness`, the error propagating), without Python per example.
    """

    def __init__(self, tok, width: int, length: int, sloppiness: float, seed: int):
        import numpy as np

        from tsallis.llm.toy import EOS

        self.np = np
        self.W, self.L, self.s = width, length, sloppiness
        self.rng = np.random.default_rng(seed)
        ids = lambda chars: np.array([tok.convert_tokens_to_ids(c) for c in chars], dtype=np.int64)
        self.digit = ids("0123456789")
        self.letter = ids("abcdefghij"[:width])
        self.R, self.semi, self.colon, self.gt = ids("R;:>")
        self.eos = tok.convert_tokens_to_ids(EOS)
        self.seq_len = 1 + width + 1 + 2 * length + 1 + length * width + 1 + width + 1

    def batch(self, B: int):
        np, W, L, rng = self.np, self.W, self.L, self.rng
        n = rng.integers(0, L + 1, B)
        reg = rng.integers(0, 10, (B, W))
        init = reg.copy()
        active = np.argsort(rng.random((B, L)), axis=1) < n[:, None]
        slot = rng.integers(0, W, (B, L))
        d = np.where(active, rng.integers(1, 10, (B, L)), 0)
        sloppy = active & (rng.random((B, L)) < self.s)
        applied = np.where(sloppy, rng.integers(0, 10, (B, L)), d)
        rows = np.arange(B)
        blocks = []
        for k in range(L):
            reg[rows, slot[:, k]] = (reg[rows, slot[:, k]] + applied[:, k]) % 10
            blocks.append(self.digit[reg])
        col = lambda v: np.full((B, 1), v, dtype=np.int64)
        instr = np.stack([self.letter[slot], self.digit[d]], axis=2).reshape(B, 2 * L)
        out = np.concatenate([col(self.R), self.digit[init], col(self.semi), instr, col(self.colon),
                              *blocks, col(self.gt), self.digit[reg], col(self.eos)], axis=1)
        assert out.shape[1] == self.seq_len
        return out


def exact_sloppy_p0(prompt: str, width: int, sloppiness: float) -> float:
    """P(final register correct) under the sloppy distribution: prod over slots of 0.1 + 0.9 (1 - s)^k_slot."""
    instr = prompt.split(";")[1].rstrip(":")
    counts = [0] * width
    for i in range(0, len(instr), 2):
        if instr[i + 1] != "0":
            counts["abcdefghij".index(instr[i])] += 1
    return math.prod(0.1 + 0.9 * (1 - sloppiness) ** k for k in counts)


# --------------------------------------------------------------------------------------------- pretrain


def pretrain(ps: dict, out_dir: Path, deadline: float, device: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config

    from tsallis.llm.toy import build_tokenizer

    torch.manual_seed(ps["seed"])
    tok = build_tokenizer()
    sampler = SloppySampler(tok, ps["width"], ps["length"], ps["sloppiness"], ps["seed"])
    cfg = GPT2Config(vocab_size=len(tok), n_positions=ps["n_positions"], n_embd=ps["n_embd"],
                     n_layer=ps["n_layer"], n_head=ps["n_head"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = AutoModelForCausalLM.from_config(cfg).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=ps["lr"], weight_decay=ps["weight_decay"])
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    t0 = time.time()
    span = max(1.0, deadline - t0)
    model.train()
    losses, step = [], 0
    nxt = torch.from_numpy(sampler.batch(ps["batch_size"])).to(device, non_blocking=True)
    while step < ps["max_steps"] and time.time() < deadline:
        ids = nxt
        frac = min(1.0, (time.time() - t0) / span)
        lr = ps["lr"] * min(1.0, (step + 1) / ps["warmup_steps"]) * (
            ps["min_lr_frac"] + (1 - ps["min_lr_frac"]) * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), ps["max_grad_norm"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        nxt = torch.from_numpy(sampler.batch(ps["batch_size"])).to(device, non_blocking=True)  # overlaps the GPU
        step += 1
        if step % 250 == 0 or step == 1:
            losses.append((step, round(time.time() - t0, 1), float(loss.detach())))
            log(f"pretrain step {step:6d} loss {float(loss.detach()):.4f} lr {lr:.2e} ({time.time() - t0:.0f}s)")
    final_loss = float(loss.detach()) if step else float("nan")
    # held-out loss on a fresh batch (the data is i.i.d. and infinite, so this is the generalisation loss)
    model.eval()
    with torch.no_grad():
        ids = torch.from_numpy(SloppySampler(tok, ps["width"], ps["length"], ps["sloppiness"], 999).batch(
            min(1024, ps["batch_size"] * 4))).to(device)
        heldout = float(model(input_ids=ids, labels=ids).loss)
    model.to("cpu").save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    res = {"steps": step, "seconds": round(time.time() - t0, 1), "examples_seen": step * ps["batch_size"],
           "final_train_loss": final_loss, "heldout_loss": heldout, "params": n_params, "loss_curve": losses,
           "stopped_by_deadline": step < ps["max_steps"], "seq_len": sampler.seq_len, "path": str(out_dir)}
    log(f"pretrained: {step} steps, {res['examples_seen']} examples, held-out loss {heldout:.4f}, "
        f"{n_params / 1e6:.2f}M params, {res['seconds']}s")
    return res


# --------------------------------------------------------------------------------------------- diagnose


def _parse(prompt: str, rationale: str, width: int, length: int):
    """(nonzero steps correct, nonzero steps, no-op steps kept, no-op steps, last register or None)."""
    init, instr = prompt[1:].split(";")
    instr = instr.rstrip(":")
    if len(rationale) != width * length or not rationale.isdigit():
        return None
    blocks = [rationale[i * width:(i + 1) * width] for i in range(length)]
    ok = nz = keep = z = 0
    prev = init
    for k in range(length):
        slot, dgt = "abcdefghij".index(instr[2 * k]), int(instr[2 * k + 1])
        exp = list(prev)
        exp[slot] = str((int(prev[slot]) + dgt) % 10)
        if dgt:
            nz += 1
            ok += blocks[k] == "".join(exp)
        else:
            z += 1
            keep += blocks[k] == prev
        prev = blocks[k]
    return ok, nz, keep, z, blocks[-1]


def rationale_stats(tr, examples, num_samples: int, width: int, length: int) -> dict:
    """Sample rationales + answers (T=1) and score the reasoning itself."""
    ro = tr.rollout(examples, num_samples=num_samples, sample_answers=True)
    dec = tr.tokenizer.decode
    ok = nz = keep = z = fmt = copy = rat_ok = ans_ok = n = 0
    for i, ex in enumerate(examples):
        for m in range(num_samples):
            j = i * num_samples + m
            rat = dec(ro.rationale_ids[j], skip_special_tokens=True)
            ans = (ro.answer_text[j] or "").strip()
            n += 1
            ans_ok += ans == ex.meta.get("clean_answer", ex.answer)
            p = _parse(ex.prompt, rat, width, length)
            if p is None:
                continue
            fmt += 1
            ok += p[0]
            nz += p[1]
            keep += p[2]
            z += p[3]
            copy += ans == p[4]
            rat_ok += p[4] == ex.meta.get("clean_answer", ex.answer)
    return {"step_accuracy_nonzero": ok / max(nz, 1), "noop_fidelity": keep / max(z, 1), "format_rate": fmt / n,
            "answer_copies_rationale": copy / max(fmt, 1), "rationale_accuracy": rat_ok / n,
            "answer_accuracy": ans_ok / n, "samples": n}


def diagnose(model_path: Path, s: dict, deadline: float) -> dict:
    import numpy as np
    import torch

    from tsallis.llm.config import TrainConfig
    from tsallis.llm.toy import ToyTask, make_examples
    from tsallis.llm.trainer import Trainer

    ps, ds, tc = s["pretrain"], s["diagnose"], s["train"]
    cfg = TrainConfig(model=str(model_path), method="garl", q=0.0, dtype="float32", progress_bar=False,
                      save_every=0, output_dir=os.devnull, max_rationale_tokens=tc["max_rationale_tokens"],
                      max_answer_tokens=tc["max_answer_tokens"], temperature=tc["temperature"],
                      toy_n_train=8, toy_n_eval=8, toy_width=ps["width"], toy_length=ps["length"])
    torch.manual_seed(0)
    tr = Trainer(cfg)
    out = {"intended_step_accuracy": 1 - 0.9 * ps["sloppiness"], "by_n_steps": {}}
    order = [n for n in ds["candidates"] if n in ds["difficulties"]]
    order += [n for n in ds["difficulties"] if n not in order]  # the candidates first: they decide the difficulty
    for n in order:
        if time.time() > deadline:
            out["truncated_by_deadline"] = True
            break
        exs = make_examples(ToyTask(n_steps=n, width=ps["width"], length=ps["length"], n_eval=ds["n_prompts"]),
                            "eval")
        st = rationale_stats(tr, exs, ds["rationale_samples"], ps["width"], ps["length"])
        log_p = tr.estimate_log_p(exs, num_samples=ds["p0_samples"], batch_size=max(1, 4096 // ds["p0_samples"]))
        exact = float(np.mean([exact_sloppy_p0(ex.prompt, ps["width"], ps["sloppiness"]) for ex in exs]))
        out["by_n_steps"][str(n)] = {"p0": float(np.exp(log_p).mean()), "mean_log_p": float(log_p.mean()),
                                     "median_log_p": float(np.median(log_p)), "p0_sloppy_distribution": exact, **st}
        log(f"diagnose n={n}: p0 {out['by_n_steps'][str(n)]['p0']:.2e} (sloppy distribution {exact:.2e}), "
            f"mean log P {log_p.mean():.2f}, step acc {st['step_accuracy_nonzero']:.3f} "
            f"(intended {out['intended_step_accuracy']:.3f}), no-op {st['noop_fidelity']:.3f}, "
            f"format {st['format_rate']:.2f}, copy {st['answer_copies_rationale']:.2f}")
    out["by_n_steps"] = {str(n): out["by_n_steps"][str(n)] for n in sorted(map(int, out["by_n_steps"]))}
    cands = [n for n in ds["candidates"] if str(n) in out["by_n_steps"]]
    if cands:
        chosen = min(cands, key=lambda n: abs(math.log10(max(out["by_n_steps"][str(n)]["p0"], 1e-300))
                                               - math.log10(TARGET_P0)))
    else:
        chosen = max(ds["candidates"])
    out["chosen_n_steps"] = chosen
    out["rule"] = (f"n_steps in {ds['candidates']} whose measured p0 (mean P-hat over {ds['n_prompts']} held-out "
                   f"prompts x {ds['p0_samples']} rationales) is closest to {TARGET_P0:g} in |log10 p0 - log10 "
                   f"{TARGET_P0:g}|; {max(ds['candidates'])} if none was measured before the deadline")
    del tr
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out


# ----------------------------------------------------------------------------------------------- worker


def _cold_eval(tr, cs: dict, width: int, length: int) -> dict:
    import numpy as np

    st = rationale_stats(tr, tr.eval_examples, cs["eval_samples"], width, length)
    res = {"eval/accuracy": st["answer_accuracy"], "eval/rationale_accuracy": st["rationale_accuracy"],
           "eval/step_accuracy": st["step_accuracy_nonzero"], "eval/copy_rate": st["answer_copies_rationale"],
           "eval/format_rate": st["format_rate"]}
    if cs.get("p_hat_prompts"):
        exs = tr.eval_examples[:cs["p_hat_prompts"]]
        log_p = tr.estimate_log_p(exs, num_samples=cs["p_hat_samples"], batch_size=len(exs))
        res["eval/log_p_hat"] = float(log_p.mean())
        res["eval/p_hat"] = float(np.exp(log_p).mean())
    return res


def _noise_eval(tr, ns: dict, width: int, length: int) -> dict:
    import numpy as np

    res = _cold_eval(tr, {"eval_samples": ns["eval_samples"]}, width, length)
    train = tr.train_examples
    ans = tr.answers(train, num_samples=ns["train_samples"], batch_size=len(train))
    noisy = [(a, ex) for row, ex in zip(ans, train) for a in row if ex.meta.get("noisy")]
    clean = [(a, ex) for row, ex in zip(ans, train) for a in row if not ex.meta.get("noisy")]
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")
    res["train/memorized_noisy"] = mean([(a or "").strip() == ex.answer for a, ex in noisy])
    res["train/true_on_noisy"] = mean([(a or "").strip() == ex.meta["clean_answer"] for a, ex in noisy])
    res["train/clean_accuracy"] = mean([(a or "").strip() == ex.answer for a, ex in clean])
    res["train/n_noisy"] = len(noisy) // max(1, ns["train_samples"])
    return res


STEP_KEYS = ("reward", "accuracy", "log_p_hat/mean", "p_hat/mean", "weights/ess", "frac_reward_zero_std",
             "grad_norm", "entropy", "completions/clipped_ratio", "step_time", "loss")


def worker(job_file: str) -> int:
    job = json.loads(Path(job_file).read_text())
    try:
        os.nice(5)
    except OSError:
        pass
    import torch

    torch.set_num_threads(1)
    from tsallis.llm.config import TrainConfig
    from tsallis.llm.trainer import NonFiniteError, Trainer

    if torch.cuda.is_available():
        torch.zeros(1, device="cuda")  # initialise the CUDA context while the pretraining runs
    ready = Path(job["ready"])
    res_path = Path(job["result"])
    rec = {"name": job["name"], "kind": job["kind"], "method": job["config"]["method"], "q": job["config"]["q"],
           "seed": job["config"]["seed"], "status": "waiting", "steps_done": 0, "evals": [], "steps": []}
    while not ready.exists():
        if time.time() > job["hard_deadline"]:
            rec["status"] = "never started (ready.json missing at deadline)"
            write_json(res_path, rec)
            return 1
        time.sleep(0.2)
    info = json.loads(ready.read_text())
    if info.get("abort"):
        rec["status"] = f"aborted: {info['abort']}"
        write_json(res_path, rec)
        return 1
    deadline = info["rl_deadline"]
    kw = dict(job["config"])
    kw["model"] = info["model_path"]
    if job["kind"] == "cold":
        kw["toy_n_steps"] = info["n_steps"]
    rec["config"] = kw
    cfg = TrainConfig(**kw)
    t_start = time.time()
    tr = Trainer(cfg)
    spec = job["spec"]
    evaluate = (lambda: _cold_eval(tr, job["eval"], spec["width"], spec["length"])) if job["kind"] == "cold" else (
        lambda: _noise_eval(tr, job["eval"], spec["width"], spec["length"]))
    t = time.time()
    first = evaluate()
    t_eval = time.time() - t
    rec["evals"].append({"step": 0, **{k: _r(v) for k, v in first.items()}})
    rec["status"] = "running"
    rec["load_s"] = round(t - t_start, 2)
    write_json(res_path, rec)
    step_times = []
    ee = cfg.eval_every
    while tr.loop["step"] < cfg.max_steps:
        nxt = tr.loop["step"] + 1
        est = (sorted(step_times)[len(step_times) // 2] if step_times else 1.0) * 1.5
        if time.time() + est + (t_eval * 1.5 if nxt % ee == 0 else 0.0) > deadline:
            rec["status"] = "stopped at deadline"
            break
        t = time.time()
        try:
            m = tr.step()
        except NonFiniteError as err:
            rec["status"] = f"NaN/inf guard: {err}"
            break
        tr.loop["step"] += 1
        step_times.append(time.time() - t)
        rec["steps"].append({"step": tr.loop["step"], **{k: _r(float(m[k])) for k in STEP_KEYS if k in m}})
        rec["steps_done"] = tr.loop["step"]
        if tr.loop["step"] % ee == 0:
            t = time.time()
            ev = evaluate()
            t_eval = time.time() - t
            rec["evals"].append({"step": tr.loop["step"], **{k: _r(v) for k, v in ev.items()}})
            rec["median_step_s"] = _r(sorted(step_times)[len(step_times) // 2], 4)
            rec["last_eval_s"] = round(t_eval, 3)
            write_json(res_path, rec)
    else:
        rec["status"] = "done"
    rec["median_step_s"] = _r(sorted(step_times)[len(step_times) // 2], 4) if step_times else None
    rec["rl_seconds"] = round(time.time() - t_start, 1)
    write_json(res_path, rec)
    return 0


# ------------------------------------------------------------------------------------------- aggregation


def _label(method: str, q: float) -> str:
    return "grpo" if method == "grpo" else f"{method} q={q:g}"


def _mean_se(rows):
    import numpy as np

    a = np.asarray(rows, dtype=float)
    m = np.nanmean(a, 0)
    se = np.nanstd(a, 0, ddof=1) / math.sqrt(len(a)) if len(a) > 1 else np.zeros(a.shape[1])
    return m, se


def aggregate(runs: list[dict], kind: str, s: dict) -> dict:
    import numpy as np

    runs = [r for r in runs if r.get("kind") == kind and r.get("evals")]
    if not runs:
        return {"status": "no results", "groups": {}}
    common = sorted(set.intersection(*[{e["step"] for e in r["evals"]} for r in runs]))
    groups = {}
    order = ([_label(m, q) for m, q in s["cold"]["methods"]] if kind == "cold"
             else [f"garl q={q:g}" for q in s["noise"]["qs"]])
    metrics = (("eval/accuracy", "eval/rationale_accuracy", "eval/step_accuracy", "eval/copy_rate",
                "eval/log_p_hat", "eval/p_hat") if kind == "cold" else
               ("train/memorized_noisy", "train/true_on_noisy", "train/clean_accuracy", "eval/accuracy",
                "eval/rationale_accuracy", "eval/copy_rate"))
    for lab in order:
        rs = sorted([r for r in runs if _label(r["method"], r["q"]) == lab], key=lambda r: r["seed"])
        if not rs:
            continue
        g = {"seeds": [r["seed"] for r in rs], "steps_done": [r["steps_done"] for r in rs],
             "status": [r["status"] for r in rs], "median_step_s": [r.get("median_step_s") for r in rs]}
        for k in metrics:
            rows = [[next((e.get(k) for e in r["evals"] if e["step"] == st), None) for st in common] for r in rs]
            rows = [[np.nan if v is None else v for v in row] for row in rows]
            m, se = _mean_se(rows)
            g[k] = {"per_seed": rows, "mean": [_r(float(x)) for x in m], "se": [_r(float(x)) for x in se]}
        # escape on each run's own evaluation list (all its evaluations, not only the common ones)
        g["escape_step_accuracy"] = [next((e["step"] for e in r["evals"] if (e.get("eval/accuracy") or 0)
                                           >= ESCAPE_ACCURACY), None) for r in rs]
        g["escape_step_rationale"] = [next((e["step"] for e in r["evals"] if (e.get("eval/rationale_accuracy") or 0)
                                            >= ESCAPE_ACCURACY), None) for r in rs]
        g["escape_step_p_hat"] = [next((e["step"] for e in r["evals"] if (e.get("eval/p_hat") or 0)
                                        >= ESCAPE_P_HAT), None) for r in rs]
        g["final_eval"] = [r["evals"][-1] for r in rs]
        for key in ("log_p_hat/mean", "weights/ess", "frac_reward_zero_std", "reward", "grad_norm"):
            vals = [[st.get(key) for st in r["steps"]] for r in rs]
            if any(v is not None for row in vals for v in row):
                g[f"train/{key}"] = {"per_seed_every_10": [row[::10] for row in vals],
                                     "first10_mean": [_r(float(np.nanmean([v for v in row[:10] if v is not None])))
                                                      if any(v is not None for v in row[:10]) else None
                                                      for row in vals],
                                     "last10_mean": [_r(float(np.nanmean([v for v in row[-10:] if v is not None])))
                                                     if any(v is not None for v in row[-10:]) else None
                                                     for row in vals]}
        groups[lab] = g
    all_done = all(r["status"] == "done" for r in runs)
    return {"status": "complete" if all_done else "partial (some runs stopped at the deadline or failed)",
            "eval_steps": common, "groups": groups}


# ------------------------------------------------------------------------------------------------ plots

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def _png_fallback(path: Path, series: list[tuple[str, list, list, list]], ymax: float) -> None:
    """Minimal PNG (no matplotlib on the GPU machine): mean lines with +-SE bands, fixed colours, no text."""
    import struct
    import zlib

    Wd, Ht, pad = 640, 400, 30
    img = [[[255, 255, 255] for _ in range(Wd)] for _ in range(Ht)]
    xs_all = [x for _, xs, _, _ in series for x in xs] or [0, 1]
    x0, x1 = min(xs_all), max(max(xs_all), min(xs_all) + 1)
    X = lambda x: int(pad + (x - x0) / (x1 - x0) * (Wd - 2 * pad))
    Y = lambda y: int(Ht - pad - max(0.0, min(1.0, y / ymax)) * (Ht - 2 * pad))
    for x in range(pad, Wd - pad + 1):
        img[Ht - pad][x] = [0, 0, 0]
    for y in range(pad, Ht - pad + 1):
        img[y][pad] = [0, 0, 0]
    for x in range(pad, Wd - pad, 4):  # escape level, dotted
        img[Y(ESCAPE_ACCURACY)][x] = [128, 128, 128]
    for i, (_, xs, m, se) in enumerate(series):
        c = COLORS[i % len(COLORS)]
        light = [int(255 - (255 - v) * 0.25) for v in c]
        for k in range(len(xs) - 1):
            for px in range(X(xs[k]), X(xs[k + 1]) + 1):
                t = (px - X(xs[k])) / max(1, X(xs[k + 1]) - X(xs[k]))
                lo = (m[k] - se[k]) * (1 - t) + (m[k + 1] - se[k + 1]) * t
                hi = (m[k] + se[k]) * (1 - t) + (m[k + 1] + se[k + 1]) * t
                for py in range(Y(hi), Y(lo) + 1):
                    if img[py][px] == [255, 255, 255]:
                        img[py][px] = light
        for k in range(len(xs) - 1):
            xa, ya, xb, yb = X(xs[k]), Y(m[k]), X(xs[k + 1]), Y(m[k + 1])
            n = max(abs(xb - xa), abs(yb - ya), 1)
            for j in range(n + 1):
                px, py = xa + (xb - xa) * j // n, ya + (yb - ya) * j // n
                for dy in (0, 1):
                    img[min(Ht - 1, py + dy)][px] = list(c)
        for dx in range(10):  # legend swatch, in order, top right
            for dy in range(6):
                img[pad + 12 * i + dy][Wd - pad - 20 + dx] = list(c)
    raw = b"".join(b"\x00" + bytes(v for px in row for v in px) for row in img)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", Wd, Ht, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def plot(agg: dict, path: Path, metrics: list[tuple[str, str]], title: str) -> str:
    """One panel per metric, mean over seeds +- SE, one line per group. Returns the backend used."""
    steps = agg.get("eval_steps", [])
    if not steps or not agg["groups"]:
        return "none (no data)"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        k = metrics[0][0]
        series = [(lab, steps, g[k]["mean"], g[k]["se"]) for lab, g in agg["groups"].items() if k in g]
        series = [(lab, xs, [v or 0.0 for v in m], [v or 0.0 for v in se]) for lab, xs, m, se in series]
        ymax = max([0.15] + [a + b for _, _, m, se in series for a, b in zip(m, se)]) * 1.05
        _png_fallback(path, series, ymax)
        return (f"fallback PNG ({k} only, y from 0 to {ymax:.3g}, dotted line = {ESCAPE_ACCURACY}; colours in "
                f"order {list(agg['groups'])}: {COLORS[:len(series)]})")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4))
    axes = [axes] if len(metrics) == 1 else list(axes)
    for ax, (k, ylab) in zip(axes, metrics):
        for i, (lab, g) in enumerate(agg["groups"].items()):
            if k not in g:
                continue
            m = [math.nan if v is None else v for v in g[k]["mean"]]
            se = [0.0 if v is None else v for v in g[k]["se"]]
            c = [v / 255 for v in COLORS[i % len(COLORS)]]
            ax.plot(steps, m, label=f"{lab} (n={len(g['seeds'])})", color=c)
            ax.fill_between(steps, [a - b for a, b in zip(m, se)], [a + b for a, b in zip(m, se)], color=c, alpha=0.2)
        if k in ("eval/accuracy", "eval/rationale_accuracy"):
            ax.axhline(ESCAPE_ACCURACY, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylab)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return "matplotlib"


# ------------------------------------------------------------------------------------------------ driver


def make_jobs(s: dict, work: Path, hard_deadline: float) -> list[dict]:
    tc, cs, ns, ps = s["train"], s["cold"], s["noise"], s["pretrain"]
    common = dict(progress_bar=False, save_every=0, dtype=tc["dtype"], learning_rate=tc["learning_rate"],
                  max_rationale_tokens=tc["max_rationale_tokens"], max_answer_tokens=tc["max_answer_tokens"],
                  temperature=tc["temperature"], lr_scheduler=tc["lr_scheduler"], baseline=tc["baseline"],
                  pathwise=tc["pathwise"], normalize=tc["normalize"], loss_type=tc["loss_type"],
                  scale_rewards=tc["scale_rewards"], epsilon=tc["epsilon"], beta=tc["beta"],
                  max_grad_norm=tc["max_grad_norm"], toy_style=tc["style"], toy_width=ps["width"],
                  toy_length=ps["length"])
    spec = {"width": ps["width"], "length": ps["length"]}
    jobs = []
    for method, q in cs["methods"]:
        for seed in cs["seeds"]:
            name = f"cold-{method}-q{q:g}-s{seed}"
            cfg = dict(common, method=method, q=q, seed=seed, max_steps=cs["max_steps"], eval_every=cs["eval_every"],
                       num_generations=tc["num_generations"], prompts_per_step=tc["prompts_per_step"],
                       toy_n_train=cs["toy_n_train"], toy_n_eval=cs["toy_n_eval"],
                       output_dir=str(work / "runs" / name))
            jobs.append({"name": name, "kind": "cold", "config": cfg, "eval": cs, "spec": spec})
    if ns["enabled"]:
        for q in ns["qs"]:
            for seed in ns["seeds"]:
                name = f"noise-garl-q{q:g}-s{seed}"
                cfg = dict(common, method="garl", q=q, seed=seed, max_steps=ns["max_steps"],
                           eval_every=ns["eval_every"], num_generations=ns["num_generations"],
                           prompts_per_step=ns["prompts_per_step"], toy_n_train=ns["toy_n_train"],
                           toy_n_eval=ns["toy_n_eval"], toy_eps=ns["eps"], toy_n_steps=ns["n_steps"],
                           output_dir=str(work / "runs" / name))
                jobs.append({"name": name, "kind": "noise", "config": cfg, "eval": ns, "spec": spec})
    for j in jobs:
        j["ready"] = str(work / "ready.json")
        j["result"] = str(work / "results" / f"{j['name']}.json")
        j["hard_deadline"] = hard_deadline
    return jobs


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        return worker(sys.argv[2])
    s = settings(TINY)
    t0 = float(os.environ.get("GPU_SESSION_T0", time.time()))
    end = t0 + s["budget_s"]
    out = Path(os.environ.get("OUT", "runs/gpu_session"))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("GPU_SESSION_WORK", f"/tmp/gpu_session_{os.getpid()}"))
    (work / "results").mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    import torch
    import transformers  # noqa: F401  (imported before the workers start, which then compete for the CPUs)

    import tsallis.llm.trainer  # noqa: F401

    device = "cuda" if torch.cuda.is_available() and not TINY else "cpu"
    env_info = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "torch": torch.__version__,
                "cuda": torch.version.cuda, "python": sys.version.split()[0], "cpus": os.cpu_count(), "tiny": TINY}
    try:
        import transformers

        env_info["transformers"] = transformers.__version__
    except Exception as err:  # pragma: no cover
        env_info["transformers"] = repr(err)
    state = {"status": "started", "settings": s, "env": env_info,
             "definitions": {
                 "escape": f"first evaluation with held-out answer accuracy >= {ESCAPE_ACCURACY} (sampled answer, "
                           "T=1, eval_samples per prompt over toy_n_eval held-out prompts); also reported: "
                           f"rationale accuracy >= {ESCAPE_ACCURACY} (last register written in the rationale equals "
                           f"y*: real reasoning, immune to answer hedging) and held-out mean P-hat >= {ESCAPE_P_HAT}",
                 "p_hat": "eval/p_hat: mean over p_hat_prompts held-out prompts of P-hat = mean_m p(y* EOS|x, z_m), "
                          "z_m ~ p(z|x) (p_hat_samples); eval/log_p_hat: mean of log P-hat",
                 "step_accuracy": "fraction of sampled nonzero instructions whose written register equals the "
                                  "previous written register with that slot updated correctly",
                 "copy_rate": "fraction of well-formed samples whose answer equals the rationale's last register "
                              "(falls when the answer hedges instead of copying)"}}
    cold_json, noise_json = out / "gpu_cold_start.json", out / "gpu_label_noise.json"
    write_json(cold_json, state)
    log(f"session: device {env_info['device']}, tiny={TINY}, {time.time() - t0:.0f}s since session start, "
        f"deadline in {end - time.time():.0f}s; work dir {work}")
    rl_deadline = end - s["aggregate_reserve_s"]
    jobs = make_jobs(s, work, hard_deadline=rl_deadline)
    procs = []
    for j in jobs:
        jf = work / f"{j['name']}.job.json"
        jf.write_text(json.dumps(j))
        fh = open(work / "logs" / f"{j['name']}.log", "w")
        procs.append((j, subprocess.Popen([sys.executable, "-u", str(Path(__file__).resolve()), "--worker", str(jf)],
                                          stdout=fh, stderr=subprocess.STDOUT, env={**os.environ,
                                                                                    "OMP_NUM_THREADS": "1",
                                                                                    "MKL_NUM_THREADS": "1"})))
    log(f"spawned {len(procs)} worker processes")
    ready = work / "ready.json"
    try:
        # ---------------------------------------------------------------- pretrain
        pre_deadline = min(time.time() + s["pretrain"]["time_s"],
                           rl_deadline - s["min_rl_s"] - s["diagnose"]["time_s"] / 2)
        state["pretrain"] = pretrain(s["pretrain"], work / "model", pre_deadline, device)
        state["status"] = "pretrained"
        write_json(cold_json, state)
        # ---------------------------------------------------------------- diagnose + p0
        diag_deadline = min(time.time() + s["diagnose"]["time_s"], rl_deadline - s["min_rl_s"])
        state["diagnose"] = diagnose(work / "model", s, diag_deadline)
        state["status"] = "diagnosed"
        state["n_steps"] = state["diagnose"]["chosen_n_steps"]
        state["p0"] = state["diagnose"]["by_n_steps"].get(str(state["n_steps"]))
        write_json(cold_json, state)
        log(f"cold-start difficulty n_steps={state['n_steps']} (p0 {state['p0'] and state['p0']['p0']:.2e}); "
            f"RL deadline in {rl_deadline - time.time():.0f}s")
        write_json(ready, {"model_path": str(work / "model"), "n_steps": state["n_steps"], "rl_deadline": rl_deadline})
    except Exception as err:  # the workers must not wait forever; the JSON records what failed
        import traceback

        traceback.print_exc()
        state["status"] = f"failed before RL: {err!r}"
        write_json(ready, {"abort": repr(err)})
        write_json(cold_json, state)
    t_rl = time.time()
    # ---------------------------------------------------------------- RL (workers), progress lines
    last = 0.0
    while any(p.poll() is None for _, p in procs) and time.time() < rl_deadline + 10:
        time.sleep(1.0)
        if time.time() - last > (20 if not TINY else 10):
            last = time.time()
            done = {}
            for j, _ in procs:
                try:
                    done[j["name"]] = json.loads(Path(j["result"]).read_text())["steps_done"]
                except Exception:
                    done[j["name"]] = None
            steps = [v for v in done.values() if v is not None]
            log(f"RL {time.time() - t_rl:.0f}s: {sum(p.poll() is None for _, p in procs)} running, steps done "
                f"min/median/max {min(steps, default=0)}/{sorted(steps)[len(steps) // 2] if steps else 0}/"
                f"{max(steps, default=0)} of {s['cold']['max_steps']}")
    for j, p in procs:  # stragglers past the deadline: terminate (we started them)
        if p.poll() is None:
            log(f"terminating {j['name']} (pid {p.pid}) at the deadline")
            p.send_signal(signal.SIGTERM)
    for _j, p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
    # ---------------------------------------------------------------- aggregate
    runs, failures = [], {}
    for j, p in procs:
        try:
            runs.append(json.loads(Path(j["result"]).read_text()))
        except Exception as err:
            tail = (work / "logs" / f"{j['name']}.log").read_text()[-1500:]
            failures[j["name"]] = {"error": repr(err), "returncode": p.returncode, "log_tail": tail}
        if p.returncode not in (0, None) and j["name"] not in failures:
            failures[j["name"]] = {"returncode": p.returncode,
                                   "log_tail": (work / "logs" / f"{j['name']}.log").read_text()[-1500:]}
    state["rl_seconds"] = round(time.time() - t_rl, 1)
    state["worker_failures"] = failures
    if failures:
        log(f"{len(failures)} worker(s) failed; first: {next(iter(failures.items()))}")
    state["cold_start"] = aggregate(runs, "cold", s)
    state["status"] = ("complete" if state["cold_start"].get("status") == "complete" and not failures
                       else f"partial: {state['cold_start'].get('status')}; {len(failures)} worker failures"
                       if "failed" not in str(state["status"]) else state["status"])
    title = (f"toy cold start on {env_info['device']}: n_steps={state.get('n_steps')}, p0="
             f"{(state.get('p0') or {}).get('p0', float('nan')):.1e}, M={s['train']['num_generations']}, "
             f"{s['train']['prompts_per_step']} prompts/step, lr {s['train']['learning_rate']:g}")
    try:
        state["png"] = plot(state["cold_start"], out / "gpu_cold_start.png",
                            [("eval/accuracy", "held-out answer accuracy"),
                             ("eval/rationale_accuracy", "held-out rationale accuracy"),
                             ("eval/log_p_hat", "held-out mean log P-hat")], title)
    except Exception as err:
        state["png"] = f"failed: {err!r}"
    write_json(cold_json, state)
    write_json(out / "gpu_runs.json", runs)
    if s["noise"]["enabled"]:
        noise = {"settings": {"noise": s["noise"], "train": s["train"]}, "env": env_info,
                 "label_noise": aggregate(runs, "noise", s)}
        try:
            noise["png"] = plot(noise["label_noise"], out / "gpu_label_noise.png",
                                [("train/memorized_noisy", "memorized noisy labels"),
                                 ("train/clean_accuracy", "clean training accuracy"),
                                 ("eval/accuracy", "held-out accuracy")],
                                f"label noise eps={s['noise']['eps']}, n_steps={s['noise']['n_steps']}, GARL")
        except Exception as err:
            noise["png"] = f"failed: {err!r}"
        write_json(noise_json, noise)
    summary = {lab: {"steps_done": g["steps_done"], "escape_acc": g["escape_step_accuracy"],
                     "escape_rationale": g["escape_step_rationale"],
                     "final_acc": [e.get("eval/accuracy") for e in g["final_eval"]],
                     "final_rat_acc": [e.get("eval/rationale_accuracy") for e in g["final_eval"]]}
               for lab, g in state["cold_start"].get("groups", {}).items()}
    log("cold-start summary: " + json.dumps(summary))
    log(f"driver done: status {state['status']!r}, {time.time() - t0:.0f}s since session start")
    return 0


def _main_guarded() -> int:
    try:
        return main()
    except BaseException as err:  # always leave a JSON saying what failed
        import traceback

        traceback.print_exc()
        out = Path(os.environ.get("OUT", "runs/gpu_session"))
        if len(sys.argv) < 2 and not (out / "gpu_cold_start.json").exists():
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / "gpu_cold_start.json", {"status": f"driver crashed: {err!r}",
                                                     "traceback": traceback.format_exc()[-4000:]})
        return 1


if __name__ == "__main__":
    sys.exit(_main_guarded())
