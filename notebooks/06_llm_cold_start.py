# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Cold start with a language model: GRPO vs GARL vs PAFT, live
#
# The LLM version of notebook 02. A model samples a rationale $z$ and then an answer; the training signal is the
# gold answer $y^*$. The three estimators of `tsallis.llm` share one rollout and one forward/backward per step:
#
# * **GRPO** samples answers and rewards exact matches, normalised within the group of $M$ samples. At cold start
#   almost every group is all-zero (`frac_reward_zero_std` $\approx 1$), so there is no signal.
# * **GARL** (Eq. 12) marginalises the answer: $w_m = p(y^*\mid x, z_m)$ is always positive, and the $P^{-q}$
#   amplification (estimated as $\bar w_M^{-q}$) rescales the RL gradient towards the likelihood gradient.
# * **PAFT** (Eq. 14) resamples rationales $\propto w$ and does SFT on them, attenuated by $\bar w_M^{1-q}$.
#
# Each run shows a live progress bar (reward, $\log\hat P$, weight ESS, $q$, gradient norm); the curves follow.
#
# **CPU (default, and CI).** `MODEL_PATH = None` uses the toy register-machine task of `tsallis.llm.toy`. In quick
# mode the model is a tiny *random-init* GPT-2 (seconds; it can only show the mechanics). Otherwise it is the
# pretrained toy model (built on first use in ~5 CPU minutes and cached in `~/.cache/tsallis/toy`); its $p_0$ is
# set by `TOY_N_STEPS` (about $10^{-3}$ at 4 steps, `docs/llm_results.md`).
#
# **GPU, real model and data.** Set `MODEL_PATH` to a local Hugging Face checkpoint (the paper: Qwen3-0.6B, post-trained,
# thinking mode) and `DATA_DIR` to the official files of `TASK` (FinQA, HotpotQA or MuSiQue, laid out as in
# `docs/datasets.md`), and raise the sizes (paper: $M = 32$, rationale budget 4k-128 tokens for FinQA, learning
# rate ~1e-6). Nothing is downloaded: both paths must exist on the machine. `dtype="auto"` trains in bf16 on CUDA.
# This path is not executed in CI.

# %% tags=["parameters"]
import os

from tsallis.notebook import quick_mode, scratch_dir

QUICK = quick_mode()  # True under CI or TSALLIS_QUICK=1: small sizes
MODEL_PATH = None  # None: CPU toy model. GPU: a local HF checkpoint directory, e.g. "/models/Qwen3-0.6B"
DATA_DIR = None  # None: the toy task. GPU: folder with the official files of TASK, e.g. "/data/FinQA/dataset"
TASK = "finqa"  # with DATA_DIR: "finqa", "hotpotqa" or "musique"
PROMPT_STYLE = "cold"  # with DATA_DIR: "cold" (bare linearised input, the paper's cold start) or "warm"
TOY_N_STEPS = 4  # toy difficulty (nonzero instructions); p0 falls geometrically with it
METHODS = ([("grpo", 0.0), ("garl", 0.75), ("paft", 0.75)] if QUICK else
           [("grpo", 0.0), ("garl", 0.0), ("garl", 0.5), ("garl", 0.75), ("garl", 1.0), ("paft", 0.75)])
MAX_STEPS = 3 if QUICK else 100
NUM_GENERATIONS = 4 if QUICK else 8  # M rationales per prompt (paper: 32)
PROMPTS_PER_STEP = 2 if QUICK else 8
MAX_RATIONALE_TOKENS = 8 if QUICK else 24  # budget forcing (paper: 4k-128 FinQA, 3k-128 HotpotQA, 2k-128 MuSiQue)
MAX_ANSWER_TOKENS = 4 if QUICK else 6  # paper: 128
LEARNING_RATE = 1e-3  # toy model; ~1e-6 for a 0.6B model
EVAL_EVERY = MAX_STEPS if QUICK else 10
N_EVAL = 4 if QUICK else 64  # held-out prompts for p0 and evaluation
SEED = 0
OUTPUT_DIR = scratch_dir("notebook06")  # runs/notebook06 (the tests: a temporary folder)

# %%
import matplotlib.pyplot as plt
import numpy as np

from tsallis.llm.config import TrainConfig
from tsallis.llm.data import load_splits
from tsallis.llm.estimators import ESTIMATORS
from tsallis.llm.evaluate import estimate_log_p
from tsallis.llm.toy import ToyTask, make_examples, tiny_random_model
from tsallis.llm.trainer import Trainer
from tsallis.notebook import llm_offline_setup, plot_histories, table

llm_offline_setup()  # HF hub offline; one CPU thread for tiny models

# %% [markdown]
# ## Model and data

# %%
if MODEL_PATH is None:
    model = str(tiny_random_model(os.path.join(OUTPUT_DIR, "tiny-model"))) if QUICK else "toy"
else:
    model = MODEL_PATH
if DATA_DIR is None:
    task = ToyTask(n_steps=TOY_N_STEPS, n_eval=N_EVAL)
    train, val, task_name = make_examples(task, "train"), make_examples(task, "eval"), "toy"
else:
    splits = load_splits(TASK, DATA_DIR, style=PROMPT_STYLE, delimiter="</think>")
    train, val, task_name = splits["train"], splits["validation"][:N_EVAL], TASK
ex = train[0]
print(f"model: {model}\ntask: {task_name}, {len(train)} train / {len(val)} held-out examples")
print(f"prompt: {ex.prompt!r}\ngold answer y*: {ex.answer!r}\ngold rationale: {ex.rationale!r}")


# %%
def config(method, q, **kw):
    """The shared run settings: same rollout budget (M x prompts per step) and steps for every method."""
    reads_q = {"q": q} if "q" in ESTIMATORS[method].reads else {}  # GRPO has no q: passing one is refused
    shared = dict(model=model, task=task_name, method=method, **reads_q, num_generations=NUM_GENERATIONS,
                  prompts_per_step=PROMPTS_PER_STEP, max_rationale_tokens=MAX_RATIONALE_TOKENS,
                  max_answer_tokens=MAX_ANSWER_TOKENS, learning_rate=LEARNING_RATE, max_steps=MAX_STEPS,
                  eval_every=EVAL_EVERY, save_every=0, seed=SEED, progress_bar=True,
                  output_dir=os.path.join(OUTPUT_DIR, f"{method}-q{q:g}"))
    if DATA_DIR is not None:  # the trainer then evaluates as the paper: p@1 / p@k / maj@k, relaxed match
        shared.update(data_dir=DATA_DIR, prompt_style=PROMPT_STYLE, eval_samples=4, eval_metric="eval/maj@4")
    return TrainConfig(**{**shared, **kw})


# %% [markdown]
# ## How cold is the start?
#
# $p_0 = P(y^*\mid x)$ is an intractable marginal over rationales; `evaluate.estimate_log_p` estimates
# $\log\hat P = \log\frac1M\sum_m p(y^*\mid x, z_m)$ per held-out prompt (Eq. 8).

# %%
probe = Trainer(config("garl", 0.0, progress_bar=False), train, val)
log_p0 = estimate_log_p(probe.policy, val, num_samples=NUM_GENERATIONS, seed=SEED)  # the trainer's sampler
print(f"mean log P-hat = {log_p0.mean():.2f}  (p0 ~ {np.exp(log_p0).mean():.2e}, median log P-hat "
      f"{np.median(log_p0):.2f}, {len(val)} prompts x {NUM_GENERATIONS} rationales)")
del probe

# %% [markdown]
# ## Train, with the same budget for every method

# %%
results = {}
for method, q in METHODS:
    label = "grpo" if method == "grpo" else f"{method} q={q:g}"
    trainer = Trainer(config(method, q), train, val)  # evaluation: toy accuracy, or the paper's metrics
    results[label] = trainer.train().history

# %% [markdown]
# ## Curves
#
# `reward`: exact-match rate of the sampled answers; `frac_reward_zero_std`: share of prompts whose $M$ rewards are
# all equal (GRPO's silent groups); `log_p_hat/mean`: $\log\hat P$ of the batch (GARL/PAFT); `weights/ess`: Kish
# effective sample size of the weights $w_m$, in $[1, M]$; and the held-out evaluation. Every metric is
# documented in `docs/llm_results.md`.

# %%
keys = ["reward", "frac_reward_zero_std", "log_p_hat/mean", "weights/ess", "eval/accuracy", "eval/maj@4", "eval/p@1"]
plot_histories(results, [k for k in keys if any(k in m for h in results.values() for m in h)])  # colour = method
plt.show()

# %%
final = [{"run": label, **{k: h[-1][k] for k in ("reward", "log_p_hat/mean", "weights/ess", "frac_reward_zero_std")
                           if k in h[-1]}} for label, h in results.items()]
table(final, ["run", "reward", "frac_reward_zero_std", "log_p_hat/mean", "weights/ess"])

# %% [markdown]
# **What to expect.** With the tiny random model (quick mode) nothing is learnt in a few steps: the run only
# checks the machinery. On the pretrained toy model at $p_0\approx 10^{-3}$ (100 steps, `docs/llm_results.md`) GRPO stalls
# with `frac_reward_zero_std` $\approx 1$, as the paper reports; GARL at $q\ge 0.5$ and PAFT raise $\log\hat P$ by
# ~9 nats, but on this testbed by hedging the answer distribution (the weight ESS goes to $M$), not by better
# reasoning, so held-out accuracy does not rise. The pathwise-off ablation (`TrainConfig(pathwise=False)`)
# removes the hedging. The paper's cold-start escape on FinQA (Table 1: q = 0.75 reaches m@16 38.3, GRPO 0) needs
# the GPU path above; notebook 07 runs the paper's configurations.
