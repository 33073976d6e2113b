"""CPU step time of our GRPO (and GARL, PAFT) against TRL's GRPOTrainer, on three configs (tables, not timed tests).

    python benchmarks/bench_trl.py [--steps 15] [--threads 1] [--configs small large long] [--engine both]

Configs (identical random-init GPT-2 for both loops, float32, toy task prompts from `tsallis.llm.toy`):
- small: 2 layers, d=64 (the original comparison), completion budget 39 (ours: rationale 32 + delimiter + answer 6;
  TRL: max_completion_length 39);
- large: 6 layers, d=256, completion budget 64 (ours: 57 + 1 + 6), where model compute dominates;
- long: 6 layers, d=512 (4x large's parameters outside the embeddings), completion budget 135 (ours: 128 + 1 + 6).
All: M = num_generations = 8 completions for each of 8 prompts per optimizer step, binary exact-match reward on
the text after the delimiter, temperature 1, top-p 1, beta 0, loss_type dapo, one accumulation step, one
iteration per rollout, AdamW at a constant 1e-4, gradient clip 1.0, no gradient checkpointing (TRL 1.x defaults
bf16=True and gradient_checkpointing=True; both are switched off to match ours).

The loops are interleaved step by step in one process: a TRL callback runs one step of each of our methods after
each TRL step (outside TRL's timed window, the methods' order rotating), so machine noise hits all alike. TRL's
step time runs from `on_step_begin` to `on_step_end` (generation, rewards, loss, backward, clip, optimizer and
scheduler step; not the dataloader fetch before it); ours is `Trainer.step()` (public API). Reported: medians
over the timed steps after one warm-up step of wall-clock and of CPU (process) time, the median of the per-round
ratios ours/TRL with its interquartile range (the noise), and per step the completion tokens kept (the sum of the
completions' lengths: TRL's up to and with its EOS, ours rationale + delimiter + answer) and the tokens computed
in generation (rows x positions whose logits the model produced: a forward pre-hook counts the rows of every
model call made without gradients, and for our decode loop the rows of its prefill and of every lean per-token
step, `tsallis.llm.lean`; `generate` keeps finished rows until the last one ends, our decode loop drops them),
with tokens/s of the computed tokens. With one torch thread, CPU time is the step's compute and is far less
disturbed than wall time when other jobs share the machine. One line per config, `summary CONFIG
grpo_cpu_x_trl=R garl_x_grpo=R paft_x_grpo=R ...` (CPU-time medians of paired ratios), gives the verdict's inputs.

Engines (`--engine`): `decode` samples our steps with our decode loop (`tsallis.llm.decode.decode_rollout`),
`generate` with the `generate`-based engine (`tsallis.llm.rollout.generate_rollout`), `both` (default) runs
grpo/garl/paft with `decode` and adds a paired row `grpo-gen` (GRPO on `generate`) to every round. The engine is
chosen by rebinding the names `generate_rollout`/`decode_rollout` in the tsallis modules that call them, around
each of our steps (both engines sample identical tokens: tests/llm/test_decode.py).
Targets (issue 21): GRPO <= 0.70x TRL (small), <= 0.85x (large, long); GARL and PAFT <= 1.05x our GRPO on every
config. Needs `trl` (and `datasets`); without it the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

M, PROMPTS, ANS = 8, 8, 6
CONFIGS = {"small": dict(n_layer=2, n_embd=64, budget=39), "large": dict(n_layer=6, n_embd=256, budget=64),
           "long": dict(n_layer=6, n_embd=512, budget=135)}
METHODS = ("grpo", "garl", "paft")
TARGETS = {"small": 0.70, "large": 0.85, "long": 0.85}  # GRPO / TRL, CPU time (issue 21); GARL, PAFT / GRPO <= 1.05


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], statistics.median(xs), q[2]


@contextlib.contextmanager
def engine(name: str):
    """Our steps sample with `name` ("decode" or "generate"): the names `generate_rollout` and `decode_rollout` in
    every loaded tsallis module that calls them (not their defining modules) are bound to that engine inside."""
    from tsallis.llm import decode, rollout

    fn = decode.decode_rollout if name == "decode" else rollout.generate_rollout
    saved = [(mod, attr, getattr(mod, attr)) for key, mod in list(sys.modules.items())
             if key.startswith("tsallis.") and mod not in (decode, rollout)
             for attr in ("generate_rollout", "decode_rollout") if hasattr(mod, attr)]
    for mod, attr, _ in saved:
        setattr(mod, attr, fn)
    try:
        yield
    finally:
        for mod, attr, old in saved:
            setattr(mod, attr, old)


class GenerationCounter:
    """Counts the tokens a model computes in generation: the rows of every call with `use_cache=True` made without
    gradients (generation's calls: a prefill gives one next-token distribution per row, as does each decoding
    step; scoring forwards pass no `use_cache` or False)."""

    def __init__(self, model):
        self.count = 0
        model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and kwargs.get("use_cache") is True and not torch_grad_enabled():
            self.count += ids.shape[0]

    def take(self) -> int:
        n, self.count = self.count, 0
        return n


class DecodeCounter:
    """`GenerationCounter` for our decode loop, whose per-token forward is `tsallis.llm.lean`'s lean step where it
    applies (a forward hook would switch it off): counts the prefill's rows and the rows of every lean step, by
    wrapping `lean.lean_step` (once; our steps run one at a time, so one shared count)."""

    count = 0

    def __init__(self):
        from tsallis.llm import lean

        real = lean.lean_step
        if getattr(real, "counted", False):
            return

        def counted(model, cache):
            step = real(model, cache)
            if step is None:
                raise RuntimeError("bench_trl: the lean decode step does not apply to this model")
            DecodeCounter.count += cache.layers[0].keys.shape[0]  # the prefill's rows

            def counting_step(tok, *args):
                DecodeCounter.count += tok.shape[0]
                return step(tok, *args)

            return counting_step

        counted.counted = True
        lean.lean_step = counted

    def take(self) -> int:
        n, DecodeCounter.count = DecodeCounter.count, 0
        return n


def torch_grad_enabled() -> bool:
    import torch

    return torch.is_grad_enabled()


def run_config(name: str, spec: dict, steps: int, tmp: str, eng: str) -> dict[str, list[tuple[float, ...]]]:
    """Interleaved steps of TRL's GRPOTrainer and our methods on one config; per step (wall s, CPU s, kept
    completion tokens, computed generation tokens)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from tsallis.llm.config import TrainConfig
    from tsallis.llm.toy import DELIMITER, build_tokenizer, tiny_random_model
    from tsallis.llm.trainer import Trainer

    path = str(tiny_random_model(Path(tmp) / name, n_layer=spec["n_layer"], n_embd=spec["n_embd"]))
    rat = spec["budget"] - 1 - ANS
    # GRPO gets zero rewards from a random model, so neither GRPO moves its policy; GARL/PAFT would, and change
    # what they sample (shorter rationales): a 1e-9 learning rate keeps every loop sampling the same policy
    ours = {m: Trainer(TrainConfig(model=path, method=m, q=0.75, output_dir=f"{tmp}/{name}-{m}", progress_bar=False,
                                   save_every=0, max_steps=steps + 2, num_generations=M, prompts_per_step=PROMPTS,
                                   max_rationale_tokens=rat, max_answer_tokens=ANS, toy_n_steps=4,
                                   learning_rate=1e-4 if m == "grpo" else 1e-9, loss_type="dapo", beta=0.0,
                                   temperature=1.0, top_p=1.0, max_grad_norm=1.0))
            for m in METHODS}
    engines = {m: "generate" if eng == "generate" else "decode" for m in METHODS}
    if eng == "both":  # our GRPO on the generate engine too, in the same rounds
        ours["grpo-gen"] = Trainer(dataclasses.replace(ours["grpo"].cfg, output_dir=f"{tmp}/{name}-grpo-gen"))
        engines["grpo-gen"] = "generate"
    counters = {m: DecodeCounter() if engines[m] == "decode" else GenerationCounter(tr.unwrapped)
                for m, tr in ours.items()}
    examples = ours["grpo"].train_examples
    data = Dataset.from_dict({"prompt": [ex.prompt for ex in examples], "answer": [ex.answer for ex in examples]})

    def exact_match(completions, answer, **kw):  # ours: rewards.exact_match_reward on the text after ">"
        return [float(c.partition(DELIMITER)[1] != "" and c.partition(DELIMITER)[2].strip() == a)
                for c, a in zip(completions, answer)]

    cfg = GRPOConfig(output_dir=f"{tmp}/{name}-trl", report_to=[], use_cpu=True, bf16=False, save_strategy="no",
                     per_device_train_batch_size=M * PROMPTS, num_generations=M, gradient_accumulation_steps=1,
                     max_completion_length=spec["budget"], max_steps=steps + 1, learning_rate=1e-4,
                     lr_scheduler_type="constant", loss_type="dapo", beta=0.0, temperature=1.0, top_p=1.0,
                     max_grad_norm=1.0, logging_steps=10_000, disable_dropout=True, seed=0,
                     gradient_checkpointing=False)  # TRL 1.x defaults True; ours False: like for like
    rec: dict[str, list[tuple[float, ...]]] = {"trl": [], **{m: [] for m in ours}}
    loops = list(ours)

    class Interleave(TrainerCallback):
        def on_step_begin(self, *a, **kw):
            trl_counter.take()
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_step_end(self, *a, **kw):
            dt, dc = time.perf_counter() - self.t0, time.process_time() - self.c0
            kept = trainer._metrics["train"]["completions/mean_length"][-1] * M * PROMPTS
            rec["trl"].append((dt, dc, kept, trl_counter.take()))
            r = len(rec["trl"])
            for m in loops[r % len(loops):] + loops[:r % len(loops)]:  # rotate: no loop always runs first
                counters[m].take()
                with engine(engines[m]):
                    c0 = time.process_time()
                    out = ours[m].step()
                    dc = time.process_time() - c0
                kept = out["completions/mean_length"] * M * PROMPTS
                rec[m].append((out["step_time"], dc, kept, counters[m].take()))

    model = AutoModelForCausalLM.from_pretrained(path)
    trl_counter = GenerationCounter(model)
    trainer = GRPOTrainer(model=model, reward_funcs=exact_match, args=cfg, train_dataset=data,
                          processing_class=build_tokenizer(), callbacks=[Interleave()])
    trainer.train()
    return rec


def _paired(rec: dict[str, list[tuple[float, ...]]], a: str, b: str, col: int = 1) -> float:
    """Median over the timed rounds of a's time / b's time (CPU time by default)."""
    return statistics.median(x[col] / y[col] for x, y in zip(rec[a][1:], rec[b][1:]))


def print_table(name: str, spec: dict, rec: dict[str, list[tuple[float, ...]]]) -> None:
    timed = {k: v[1:] for k, v in rec.items()}  # drop the warm-up step
    print(f"\n[{name}] GPT-2 {spec['n_layer']}x{spec['n_embd']}, completion budget {spec['budget']}, "
          f"{len(timed['trl'])} timed steps, load {os.getloadavg()[0]:.2f}")
    print(f"{'loop':<9}{'clock':>6}{'step s':>9}{'IQR s':>16}{'x trl':>7}{'ratio IQR':>12}{'x grpo':>8}"
          f"{'kept tok':>10}{'computed':>10}{'comp tok/s':>12}")
    for col, clock in ((0, "wall"), (1, "cpu")):
        trl_t = [x[col] for x in timed["trl"]]
        grpo_t = [x[col] for x in timed["grpo"]]
        for loop, hist in timed.items():
            ts = [x[col] for x in hist]
            lo, med, hi = _quartiles(ts)
            r_lo, r_med, r_hi = _quartiles([a / b for a, b in zip(ts, trl_t)])
            x_grpo = statistics.median(a / b for a, b in zip(ts, grpo_t))
            kept = statistics.median(x[2] for x in hist)
            computed = statistics.median(x[3] for x in hist)
            tps = statistics.median(x[3] / x[col] for x in hist)
            print(f"{loop:<9}{clock:>6}{med:>9.3f}{f'{lo:.3f}-{hi:.3f}':>16}{r_med:>7.2f}"
                  f"{f'{r_lo:.2f}-{r_hi:.2f}':>12}{'' if loop == 'trl' else f'{x_grpo:.2f}':>8}{kept:>10.0f}"
                  f"{computed:>10.0f}{tps:>12.0f}")
    for loop, hist in rec.items():
        print(f"  {loop} wall s (warm-up first): {' '.join(f'{x[0]:.2f}' for x in hist)}")
    extra = f" grpo_gen_cpu_x_trl={_paired(rec, 'grpo-gen', 'trl'):.2f}" if "grpo-gen" in rec else ""
    kept_ratio = statistics.median(x[2] / y[2] for x, y in zip(timed["grpo"], timed["trl"]))
    print(f"summary {name} grpo_cpu_x_trl={_paired(rec, 'grpo', 'trl'):.2f} "
          f"garl_x_grpo={_paired(rec, 'garl', 'grpo'):.2f} paft_x_grpo={_paired(rec, 'paft', 'grpo'):.2f}{extra} "
          f"kept_tokens_x_trl={kept_ratio:.2f} target_grpo_x_trl<={TARGETS[name]:.2f} target_x_grpo<=1.05")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=15, help="timed steps each (after one warm-up step)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default; 1 is robust on a "
                                                          "shared machine)")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--engine", default="both", choices=["decode", "generate", "both"],
                    help="our sampling engine (module docstring); both: decode, plus a paired grpo-gen row")
    args = ap.parse_args()
    if args.steps < 1:
        ap.error("--steps must be >= 1")
    try:
        import datasets  # noqa: F401
        import trl
    except ImportError as err:
        print(f"skipped: the TRL comparison needs `pip install trl` ({err})")
        return 0
    import torch
    import transformers

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no tokenizer threads in the CPU-time figures
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), transformers {transformers.__version__}, "
          f"trl {trl.__version__}; M={M}, {PROMPTS} prompts/step, float32, interleaved steps, engine {args.engine}; "
          f"load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            print_table(name, CONFIGS[name], run_config(name, CONFIGS[name], args.steps, tmp, args.engine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
