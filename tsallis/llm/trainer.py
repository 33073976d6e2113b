"""One training loop for GRPO, GARL, PAFT and SFT on any local Hugging Face causal LM (torch, transformers, accelerate).

Per optimizer step: (1) take `prompts_per_step` examples (this process's shard); (2) per micro-batch, sample M
rationales per prompt with `generate` and budget forcing, and the answers if asked (`rollout.generate_rollout`);
(3) score rewards (exact match of the text after the delimiter); (4) per micro-batch, ONE teacher-forced forward
with gradients over [prompt, rationale, delimiter, answer] (gold y* for GARL/PAFT/SFT, the sampled answer for
GRPO), split into log p(z|x) and log w = log p(y*|x, z), and the method's surrogate loss from `estimators`;
(5) clip, NaN/inf guard, AdamW step; (6) log a line to metrics.jsonl (flushed), update the tqdm bar; checkpoint
and evaluate on schedule.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tsallis.core import QSchedule, frac_zero_std, grpo_advantages
from tsallis.llm import estimators
from tsallis.llm.checkpoint import (
    load_trainer_state,
    prune_checkpoints,
    resolve_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from tsallis.llm.config import DATASETS, TrainConfig
from tsallis.llm.example import Example
from tsallis.llm.rewards import exact_match_reward
from tsallis.llm.rollout import build_scored_batch, generate_rollout, token_logps

RewardFn = Callable[[str | None, Example], float]
EvaluateFn = Callable[["Trainer"], dict[str, float]]


class NonFiniteError(RuntimeError):
    """A NaN or infinite loss, gradient or log-weight: training stopped before the optimizer step."""


@dataclass(frozen=True)
class TrainResult:
    """What `Trainer.train` returns: the per-step metric dicts, the final step and checkpoint paths."""

    history: list[dict[str, Any]]
    step: int
    last_checkpoint: str | None
    best_checkpoint: str | None


# ----------------------------------------------------------------------------------------------- loading


def resolve_model_path(model: str, cache_dir: str | None = None) -> Path:
    """`model` as a directory: "toy" -> the cached pretrained toy model; else a local path that must exist."""
    if model == "toy":
        from tsallis.llm.toy import pretrained_toy_model

        return pretrained_toy_model(cache_dir=cache_dir)
    path = Path(model).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"model path {str(path)!r} does not exist. Pass --model PATH to a local Hugging Face model directory "
            "(config.json + weights + tokenizer, e.g. from `huggingface-cli download` or save_pretrained), or "
            "use --model toy / `tsallis llm pretrain-toy --out DIR` for the CPU testbed model.")
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"model path {str(path)!r} has no config.json: it is not a Hugging Face model "
                                "directory (write one with model.save_pretrained and tokenizer.save_pretrained)")
    return path


def load_model_and_tokenizer(path: str | Path, cfg: TrainConfig, *, on_cuda: bool = False):
    """Load a causal LM and its tokenizer from a local directory (local_files_only), with optional LoRA."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = {"auto": torch.bfloat16 if on_cuda else torch.float32, "float32": torch.float32,
             "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.dtype]
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if cfg.disable_dropout:
        for mod in model.modules():
            if isinstance(mod, torch.nn.Dropout):
                mod.p = 0.0
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if cfg.lora_r > 0:
        from peft import LoraConfig, get_peft_model

        targets = cfg.lora_target_modules
        targets = targets if targets == "all-linear" else [t.strip() for t in targets.split(",")]
        model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                                 lora_dropout=cfg.lora_dropout, target_modules=targets,
                                                 task_type="CAUSAL_LM"))
    return model, tokenizer


def load_examples(cfg: TrainConfig) -> tuple[list[Example], list[Example]]:
    """(train, eval) Examples of `cfg.task`: the toy task, a paper dataset (train split, `eval_split`) or
    "jsonl:PATH" (no eval split)."""
    if cfg.task in DATASETS:
        from tsallis.llm.data import load_splits

        if not cfg.data_dir or not Path(cfg.data_dir).expanduser().is_dir():
            raise FileNotFoundError(
                f"data_dir {cfg.data_dir!r} (task {cfg.task!r}) is not a directory: set `data_dir:` in the config or "
                f"pass --data-dir PATH, the folder holding the official {cfg.task} files (layout: docs/datasets.md)")
        splits = load_splits(cfg.task, Path(cfg.data_dir).expanduser(), seed=cfg.data_seed, style=cfg.prompt_style,
                             template=cfg.prompt_template, delimiter=cfg.resolved_delimiter)
        return splits["train"], splits[cfg.eval_split]
    if cfg.task == "toy":
        from tsallis.llm.toy import make_examples, toy_task

        task = toy_task(cfg)
        return make_examples(task, "train"), make_examples(task, "eval")
    if cfg.task.startswith("jsonl:"):
        path = Path(cfg.task[len("jsonl:"):])
        if not path.exists():
            raise FileNotFoundError(f"task file {str(path)!r} does not exist")
        out = []
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    d = json.loads(line)
                    out.append(Example(id=str(d.get("id", i)), prompt=d["prompt"], answer=d["answer"],
                                       aliases=tuple(d.get("aliases", ())), rationale=d.get("rationale"),
                                       task=d.get("task", "jsonl"), meta=d.get("meta", {})))
                except (json.JSONDecodeError, KeyError) as err:
                    raise ValueError(f"{path}:{i}: bad example ({err!r}); need JSON with prompt, answer") from err
        return out, []
    raise ValueError(f"unknown task {cfg.task!r}: use 'toy' or 'jsonl:PATH', or pass examples to Trainer(...)")


def _lr_lambda(cfg: TrainConfig):
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        frac = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        if cfg.lr_scheduler == "linear":
            return max(0.0, 1.0 - frac)
        if cfg.lr_scheduler == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))
        return 1.0
    return f


# ------------------------------------------------------------------------------------------------ trainer


class Trainer:
    """Train a causal LM with `config.method` on a list of Examples.

    Args:
        config: the run configuration.
        train_examples, eval_examples: Examples (default: from `config.task`).
        reward_fn: (answer text after the delimiter or None, example) -> float; default exact match (paper Sec. 7).
        evaluate_fn: called every `eval_every` steps and at the end as evaluate_fn(trainer) -> {name: value};
            `config.eval_metric` selects the best checkpoint (saved to output_dir/best). Default: the built-in
            sampled/greedy accuracy on eval_examples when there are any.
        resume_from: a checkpoint directory (or run directory) to continue exactly.
    """

    def __init__(self, config: TrainConfig, train_examples: Sequence[Example] | None = None,
                 eval_examples: Sequence[Example] | None = None, *, reward_fn: RewardFn | None = None,
                 evaluate_fn: EvaluateFn | None = None, resume_from: str | os.PathLike | None = None,
                 cache_dir: str | None = None):
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.cfg = cfg = config
        if train_examples is None:
            train_examples, default_eval = load_examples(cfg)
            eval_examples = default_eval if eval_examples is None else eval_examples
        self.train_examples = list(train_examples)
        self.eval_examples = list(eval_examples or [])
        if not self.train_examples:
            raise ValueError("no training examples")
        if cfg.method == "sft" and any(ex.rationale is None for ex in self.train_examples):
            raise ValueError("method='sft' needs gold rationales: some training examples have rationale=None")
        self.reward_fn = reward_fn or exact_match_reward
        if evaluate_fn is None and self.eval_examples:
            evaluate_fn = self.dataset_evaluate_fn() if cfg.task in DATASETS else Trainer.evaluate_accuracy
        self.evaluate_fn = evaluate_fn
        self.accelerator = acc = Accelerator(mixed_precision=cfg.mixed_precision)
        if cfg.prompts_per_step % (acc.num_processes * cfg.gradient_accumulation_steps):
            raise ValueError(f"prompts_per_step={cfg.prompts_per_step} must be divisible by the number of processes "
                             f"({acc.num_processes}) x gradient_accumulation_steps ({cfg.gradient_accumulation_steps}):"
                             f" each process splits its share into equal micro-batches (e.g. on 8 GPUs with "
                             f"prompts_per_step 8, set --gradient-accumulation-steps 1)")
        set_seed(cfg.seed, device_specific=True)
        self.output_dir = Path(cfg.output_dir)
        self.resume_path = resolve_checkpoint(resume_from) if resume_from is not None else None
        base = resolve_model_path(cfg.model, cache_dir)
        on_cuda = acc.device.type == "cuda"
        if self.resume_path is not None and cfg.lora_r == 0:
            model, tok = load_model_and_tokenizer(self.resume_path, cfg, on_cuda=on_cuda)
        else:
            model, tok = load_model_and_tokenizer(base, cfg, on_cuda=on_cuda)
            if self.resume_path is not None:
                from peft import set_peft_model_state_dict
                from safetensors.torch import load_file

                set_peft_model_state_dict(model, load_file(self.resume_path / "adapter_model.safetensors"))
        self.tokenizer = tok
        self.ref_model = None
        if cfg.method == "grpo" and cfg.beta != 0.0:
            self.ref_model, _ = load_model_and_tokenizer(base, TrainConfig(**{**cfg.to_dict(), "lora_r": 0}),
                                                         on_cuda=on_cuda)
            self.ref_model.requires_grad_(False).eval().to(acc.device)
        params = [p for p in model.parameters() if p.requires_grad]
        if cfg.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=cfg.learning_rate, momentum=0.0, weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
                                    weight_decay=cfg.weight_decay)
        self.model, self.optimizer = acc.prepare(model, opt)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer.optimizer if hasattr(
            self.optimizer, "optimizer") else self.optimizer, _lr_lambda(cfg))
        self.paft_generator = torch.Generator().manual_seed(cfg.seed + 7919 * (1 + acc.process_index))
        self.schedule = QSchedule(cfg.q_schedule if cfg.q_schedule != "constant" else "constant", q_start=cfg.q,
                                  q_end=cfg.q_end, switch_at=cfg.q_switch_at, switch_p=cfg.q_switch_p)
        self.delimiter_ids = tok(cfg.resolved_delimiter, add_special_tokens=False)["input_ids"]
        if not self.delimiter_ids:
            raise ValueError(f"the delimiter {cfg.resolved_delimiter!r} tokenizes to nothing")
        self.eos_id = tok.eos_token_id  # teacher-forced after y*
        gen_eos = getattr(getattr(self.unwrapped, "generation_config", None), "eos_token_id", None)
        gen_eos = gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else []
        self.stop_ids = sorted({self.eos_id, *gen_eos})  # any of them ends a sampled sequence
        self.loop = {"step": 0, "epoch": 0, "pos": 0, "switched": False, "running_success": 0.0,
                     "best_metric": None, "last_checkpoint": None, "best_checkpoint": None}
        if self.resume_path is not None:
            state = load_trainer_state(self.resume_path)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.loop.update(state["loop"])
            self.paft_generator.set_state(state["paft_generator"])
            set_rng_state(state["rng"])
        self.history: list[dict[str, Any]] = []
        self._writer = None

    # ------------------------------------------------------------------------------------------ helpers

    @property
    def unwrapped(self):
        return self.accelerator.unwrap_model(self.model)

    def format_prompt(self, prompt: str) -> str:
        if self.cfg.chat_template:
            prompt = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                        add_generation_prompt=True, enable_thinking=True)
        return prompt

    def encode_prompt(self, prompt: str) -> list[int]:
        return self.tokenizer(self.format_prompt(prompt), add_special_tokens=False)["input_ids"]

    def encode_answer(self, answer: str) -> list[int]:
        ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
        return ids + [self.eos_id] if self.cfg.answer_eos else ids

    def decode_answer(self, ids: list[int]) -> str | None:
        text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return text or None

    def current_q(self) -> float:
        step, loop = self.loop["step"], self.loop
        if self.schedule.kind == "step" and not loop["switched"]:
            loop["switched"] = self.schedule.should_switch(step, loop["running_success"])
        return float(self.schedule(step, self.cfg.max_steps, p=loop["running_success"], switched=loop["switched"]))

    def _next_prompts(self) -> tuple[list[Example], list[int]]:
        """This process's shard of the next `prompts_per_step` examples (epoch permutations seeded by `seed`) and
        the sampling seed of each, a function of (seed, step, index in the global batch) only: a prompt's rollouts
        are the same whatever the number of processes."""
        cfg, acc, loop = self.cfg, self.accelerator, self.loop
        out = []
        while len(out) < cfg.prompts_per_step:
            order = np.random.default_rng([cfg.seed, loop["epoch"]]).permutation(len(self.train_examples))
            take = min(cfg.prompts_per_step - len(out), len(order) - loop["pos"])
            out += [self.train_examples[i] for i in order[loop["pos"]:loop["pos"] + take]]
            loop["pos"] += take
            if loop["pos"] >= len(order):
                loop["epoch"], loop["pos"] = loop["epoch"] + 1, 0
        per = cfg.prompts_per_step // acc.num_processes
        idx = range(acc.process_index * per, (acc.process_index + 1) * per)
        seeds = [int(np.random.SeedSequence([cfg.seed, loop["step"], i]).generate_state(1)[0]) for i in idx]
        return [out[i] for i in idx], seeds

    def rollout(self, examples: Sequence[Example], *, num_samples: int, sample_answers: bool,
                temperature: float | None = None, max_rationale_tokens: int | None = None,
                prompt_seeds: list[int] | None = None):
        cfg = self.cfg
        model = self.unwrapped
        was_training = model.training
        model.eval()
        with self.accelerator.autocast():
            ro = generate_rollout(
                model, [self.encode_prompt(ex.prompt) for ex in examples], num_samples=num_samples,
                delimiter_ids=self.delimiter_ids, eos_id=self.stop_ids, pad_id=self.tokenizer.pad_token_id,
                max_rationale_tokens=max_rationale_tokens or cfg.max_rationale_tokens,
                max_answer_tokens=cfg.max_answer_tokens, temperature=temperature or cfg.temperature,
                top_p=cfg.top_p, sample_answers=sample_answers, prompt_seeds=prompt_seeds)
        model.train(was_training)
        if ro.answer_ids is not None:
            ro.answer_text = [self.decode_answer(a) for a in ro.answer_ids]
        return ro

    # --------------------------------------------------------------------------------------------- step

    def _score(self, model, examples, ro, *, gold: bool, entropy: bool):
        M = len(ro.rationale_ids) // len(examples)
        rows = [p for p in ro.prompt_ids for _ in range(M)]
        answers = ([self.encode_answer(ex.answer) for ex in examples for _ in range(M)] if gold else ro.answer_ids)
        batch = build_scored_batch(rows, ro.rationale_ids, ro.forced, self.delimiter_ids, answers,
                                   self.tokenizer.pad_token_id).to(self.accelerator.device)
        with self.accelerator.autocast():
            logps, ent = token_logps(model, batch, entropy=entropy)
        return batch, logps, ent

    def _micro_loss(self, examples, ro, q, num_items, stats):
        cfg, M = self.cfg, len(ro.rationale_ids) // len(examples)
        gas = cfg.gradient_accumulation_steps
        batch, logps, ent = self._score(self.model, examples, ro, gold=cfg.method != "grpo", entropy=True)
        rmask, amask = batch.rationale_mask, batch.answer_mask
        mask = (rmask | amask).float()
        stats["entropy"].append(float((ent * mask).sum() / mask.sum().clamp(min=1)))
        stats["scored_tokens"] += int(batch.attention_mask.sum())
        if cfg.method == "grpo":
            if cfg.mask_truncated_completions:
                mask = mask * (~torch.tensor(ro.forced, device=mask.device)).float().unsqueeze(-1)
            ref = None
            if self.ref_model is not None:
                with torch.no_grad():
                    ref, _ = token_logps(self.ref_model, batch)
            out = estimators.grpo_loss(
                logps, logps.detach(), ro.advantages.to(logps.device), mask, epsilon_low=cfg.epsilon,
                epsilon_high=cfg.epsilon_high if cfg.epsilon_high is not None else cfg.epsilon, beta=cfg.beta,
                ref_logps=ref, loss_type=cfg.loss_type, grad_accum=gas, num_items_in_batch=num_items,
                max_completion_length=cfg.max_rationale_tokens + len(self.delimiter_ids) + cfg.max_answer_tokens,
                kl_ratio_correction=cfg.kl_ratio_correction)
            return out
        lp_rat = (logps * rmask).sum(-1).view(-1, M)  # (B, M) log p(z|x)
        lp_ans = (logps * amask).sum(-1).view(-1, M)  # (B, M) log w = log p(y*|x, z)
        n_tok = (rmask | amask).sum(-1).view(-1, M)
        if not bool(torch.isfinite(lp_ans.detach()).all()):
            raise NonFiniteError("non-finite teacher-forced log p(y*|x, z)")
        common = dict(n_tokens=n_tok, length_norm=cfg.length_norm)
        if cfg.method == "garl":
            out = estimators.garl_loss(lp_rat, lp_ans, q=q, baseline=cfg.baseline, pathwise=cfg.pathwise,
                                       normalize=cfg.normalize, **common)
        elif cfg.method == "paft":
            out = estimators.paft_loss(lp_rat, lp_ans, q=q, K=cfg.resolved_paft_k, generator=self.paft_generator,
                                       normalize=cfg.normalize, **common)
        else:
            out = estimators.sft_loss(lp_rat, lp_ans, **common)
        return estimators.LossOut(out.loss / gas, out.stats)

    def step(self) -> dict[str, Any]:
        """One optimizer step; returns its metrics."""
        cfg, acc = self.cfg, self.accelerator
        t0 = time.perf_counter()
        q = self.current_q()
        examples, seeds = self._next_prompts()
        gas = cfg.gradient_accumulation_steps
        per = len(examples) // gas
        micro = [examples[i * per:(i + 1) * per] for i in range(gas)]
        micro_seeds = [seeds[i * per:(i + 1) * per] for i in range(gas)]
        M = 1 if cfg.method == "sft" else cfg.num_generations
        rollouts, rewards, accs, gen_tokens = [], [], [], 0
        for mb, mb_seeds in zip(micro, micro_seeds):
            if cfg.method == "sft":
                ro = self._gold_rollout(mb)
            else:
                try:
                    ro = self.rollout(mb, num_samples=M, sample_answers=cfg.sample_answers, prompt_seeds=mb_seeds)
                except RuntimeError as err:  # torch.multinomial on NaN/inf probabilities
                    if "inf" in str(err) or "nan" in str(err):
                        raise NonFiniteError(f"sampling met non-finite probabilities ({err})") from err
                    raise
                gen_tokens += ro.num_generated_tokens
            if ro.answer_text is not None:
                exs = [ex for ex in mb for _ in range(M)]
                rewards.append(torch.tensor([self.reward_fn(a, ex) for a, ex in zip(ro.answer_text, exs)]).view(-1, M))
                accs.append(torch.tensor([exact_match_reward(a, ex) for a, ex in zip(ro.answer_text, exs)]))
            rollouts.append(ro)
        reward = torch.cat(rewards) if rewards else None  # (B_local, M)
        t_gen = time.perf_counter() - t0
        num_items = None
        if cfg.method == "grpo":
            adv = grpo_advantages(reward.to(torch.float32), cfg.scale_rewards).view(-1)
            for i, ro in enumerate(rollouts):
                ro.advantages = adv[i * per * M:(i + 1) * per * M]
            n_act = sum(sum(len(z) + (0 if f else len(self.delimiter_ids)) + len(a) for z, f, a in zip(
                ro.rationale_ids, ro.forced, ro.answer_ids) if not (cfg.mask_truncated_completions and f))
                for ro in rollouts)
            num_items = float(acc.gather(torch.tensor([n_act], device=acc.device)).sum()) / acc.num_processes
        stats: dict[str, Any] = {"entropy": [], "scored_tokens": 0}
        self.model.train()
        loss_total, loss_stats = 0.0, {}
        for i, (mb, ro) in enumerate(zip(micro, rollouts)):
            ctx = acc.no_sync(self.model) if i < gas - 1 else contextlib.nullcontext()
            with ctx:
                try:
                    out = self._micro_loss(mb, ro, q, num_items, stats)
                except ValueError as err:
                    if "NaN or infinite" in str(err):
                        raise NonFiniteError(str(err)) from err
                    raise
                if not bool(torch.isfinite(out.loss.detach())):
                    raise NonFiniteError(f"the loss is {float(out.loss)}")
                acc.backward(out.loss)
            loss_total += float(out.loss.detach())
            for k, v in out.stats.items():
                loss_stats.setdefault(k, []).append(v)
        grad_norm = acc.clip_grad_norm_(self.model.parameters(),
                                        cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf"))
        grad_norm = float(grad_norm) if grad_norm is not None else float("nan")
        if not math.isfinite(grad_norm):
            raise NonFiniteError(f"the gradient norm is {grad_norm}")
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        if acc.num_processes > 1:  # log the global batch's loss, reward and accuracy
            loss_total = float(acc.gather(torch.tensor([loss_total], device=acc.device)).mean())
            if reward is not None:
                reward = acc.gather(reward.to(acc.device)).cpu()
                accs = [acc.gather(torch.cat(accs).to(acc.device)).cpu()]
        m = self._metrics(q, loss_total, loss_stats, stats, rollouts, reward, accs, gen_tokens, grad_norm, dt)
        m["time/rollout"], m["time/update"] = t_gen, dt - t_gen
        return m

    def _gold_rollout(self, examples):
        from tsallis.llm.rollout import Rollout

        return Rollout([self.encode_prompt(ex.prompt) for ex in examples],
                       [self.tokenizer(ex.rationale, add_special_tokens=False)["input_ids"] for ex in examples],
                       [False] * len(examples), None, None, 0)

    def _metrics(self, q, loss, loss_stats, stats, rollouts, reward, accs, gen_tokens, grad_norm, dt):
        cfg, loop = self.cfg, self.loop
        m: dict[str, Any] = {"step": loop["step"] + 1, "q": q, "loss": loss, "grad_norm": grad_norm,
                             "learning_rate": self.scheduler.get_last_lr()[0]}
        for k, v in loss_stats.items():
            m[k] = float(np.mean(v))
        m["entropy"] = float(np.mean(stats["entropy"])) if stats["entropy"] else float("nan")
        if reward is not None:
            m["reward"] = float(reward.mean())
            m["reward_std"] = float(reward.std()) if reward.numel() > 1 else 0.0
            m["frac_reward_zero_std"] = frac_zero_std(reward)
            m["accuracy"] = float(torch.cat(accs).mean())
        if cfg.method != "sft":
            lens = [len(z) for ro in rollouts for z in ro.rationale_ids]
            m["completions/mean_length"] = float(np.mean([
                len(z) + len(self.delimiter_ids) + (len(a) if ro.answer_ids else 0)
                for ro in rollouts for z, a in zip(ro.rationale_ids, ro.answer_ids or [[]] * len(ro.rationale_ids))]))
            m["rationale/mean_length"] = float(np.mean(lens))
            m["completions/clipped_ratio"] = float(np.mean([f for ro in rollouts for f in ro.forced]))
        success = m.get("p_hat/mean", m.get("reward", 0.0))
        loop["running_success"] = cfg.success_ema * loop["running_success"] + (1 - cfg.success_ema) * success
        m["running_success"] = loop["running_success"]
        m["num_tokens"] = gen_tokens + stats["scored_tokens"]
        m["tokens_per_s"] = m["num_tokens"] / dt
        m["step_time"] = dt
        return m

    # -------------------------------------------------------------------------------------- evaluation

    @torch.no_grad()
    def answers(self, examples: Sequence[Example], *, num_samples: int = 1, batch_size: int = 64,
                temperature: float | None = None) -> list[list[str | None]]:
        """Sampled answers, num_samples per example (the evaluation hook's building block)."""
        out: list[list[str | None]] = []
        for s in range(0, len(examples), batch_size):
            chunk = list(examples[s:s + batch_size])
            ro = self.rollout(chunk, num_samples=num_samples, sample_answers=True, temperature=temperature)
            out += [ro.answer_text[i * num_samples:(i + 1) * num_samples] for i in range(len(chunk))]
        return out

    def dataset_evaluate_fn(self) -> EvaluateFn:
        """The paper's evaluation as a hook: `eval_samples` samples per `eval_examples` prompt with budget forcing,
        scored by `eval_scorer` -> eval/p@1, eval/p@k, eval/maj@k, ... (`tsallis.llm.evaluate.make_evaluate_fn`)."""
        from tsallis.llm.evaluate import make_evaluate_fn

        cfg = self.cfg
        examples = self.eval_examples
        if cfg.chat_template:  # evaluate() feeds prompts as they are: apply the chat template here once
            import dataclasses

            examples = [dataclasses.replace(ex, prompt=self.format_prompt(ex.prompt)) for ex in examples]
        return make_evaluate_fn(
            examples, k=cfg.eval_samples, scorer=cfg.eval_scorer, ties=cfg.eval_ties,
            max_rationale_tokens=cfg.max_rationale_tokens, max_answer_tokens=cfg.max_answer_tokens,
            temperature=cfg.temperature, top_p=cfg.top_p, delimiter=cfg.resolved_delimiter,
            batch_size=cfg.eval_batch_size, seed=cfg.seed)

    def evaluate_accuracy(self) -> dict[str, float]:
        """Built-in evaluation: mean exact-match accuracy of `eval_samples` sampled answers per eval example."""
        ans = self.answers(self.eval_examples, num_samples=self.cfg.eval_samples)
        correct = [exact_match_reward(a, ex) for ex, row in zip(self.eval_examples, ans) for a in row]
        return {"eval/accuracy": float(np.mean(correct))}

    @torch.no_grad()
    def estimate_log_p(self, examples: Sequence[Example], *, num_samples: int = 32, batch_size: int = 16) -> np.ndarray:
        """Monte Carlo log P-hat(y*|x) = log mean_m p(y*|x, z_m), z_m ~ p(z|x) with budget forcing, per example."""
        from tsallis.core import log_mean_w

        out = []
        for s in range(0, len(examples), batch_size):
            chunk = list(examples[s:s + batch_size])
            ro = self.rollout(chunk, num_samples=num_samples, sample_answers=False)
            batch, logps, _ = self._score(self.unwrapped, chunk, ro, gold=True, entropy=False)
            log_w = (logps * batch.answer_mask).cpu().sum(-1).view(len(chunk), num_samples).double()
            out.append(log_mean_w(log_w).numpy())
        return np.concatenate(out)

    # ---------------------------------------------------------------------------------------------- loop

    def train(self) -> TrainResult:
        """Run until `max_steps`; returns the metric history. Raises NonFiniteError on NaN/inf (no update made)."""
        from tqdm.auto import tqdm

        cfg, acc, loop = self.cfg, self.accelerator, self.loop
        main = acc.is_main_process
        metrics_path = self.output_dir / "metrics.jsonl"
        if main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
            self._truncate_metrics(metrics_path, loop["step"])
            if cfg.report_to == "tensorboard":
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.output_dir / "tensorboard"))
        bar = tqdm(total=cfg.max_steps, initial=loop["step"], disable=not (cfg.progress_bar and main),
                   desc=f"{cfg.method} q={cfg.q:g}", dynamic_ncols=True)
        with open(metrics_path, "a") if main else contextlib.nullcontext() as fh:
            while loop["step"] < cfg.max_steps:
                try:
                    m = self.step()
                except NonFiniteError as err:
                    last = loop["last_checkpoint"] or "none saved yet (set save_every)"
                    msg = (f"NaN/inf guard: {err} at step {loop['step'] + 1}; stopped before the optimizer step. "
                           f"Last good checkpoint: {last}. Lower learning_rate or check the data, then --resume.")
                    if main:
                        fh.write(json.dumps({"step": loop["step"] + 1, "error": msg}) + "\n")
                        fh.flush()
                    raise NonFiniteError(msg) from err
                loop["step"] += 1
                if cfg.eval_every and self.evaluate_fn and loop["step"] % cfg.eval_every == 0:
                    m.update(self._evaluate())
                if main:
                    fh.write(json.dumps(m) + "\n")
                    fh.flush()
                    if self._writer is not None:
                        for k, v in m.items():
                            if isinstance(v, (int, float)) and k != "step":
                                self._writer.add_scalar(k, v, loop["step"])
                self.history.append(m)
                bar.set_postfix({k: f"{m[k]:.3g}" for k in ("reward", "log_p_hat/mean", "weights/ess", "q",
                                                           "grad_norm", "eval/accuracy") if k in m}, refresh=False)
                bar.update(1)
                if cfg.save_every and loop["step"] % cfg.save_every == 0 and loop["step"] < cfg.max_steps:
                    self.save()
        bar.close()
        self.save()
        if self._writer is not None:
            self._writer.close()
        return TrainResult(self.history, loop["step"], loop["last_checkpoint"], loop["best_checkpoint"])

    def _evaluate(self) -> dict[str, float]:
        res = self.evaluate_fn(self)
        val = res.get(self.cfg.eval_metric)
        if self.accelerator.num_processes > 1:  # every rank evaluates; all follow the main process's value
            from accelerate.utils import broadcast_object_list

            res, val = broadcast_object_list([res, val])
        best = self.loop["best_metric"]
        if val is not None and (best is None or val > best):
            self.loop["best_metric"] = float(val)
            self.loop["best_checkpoint"] = str(self.output_dir / "best")
            self.save(self.output_dir / "best", prune=False)
        return res

    def save(self, path: Path | None = None, *, prune: bool = True) -> Path:
        """Atomic checkpoint of the whole training state (main process writes; all wait)."""
        acc = self.accelerator
        path = Path(path) if path is not None else self.output_dir / "checkpoints" / f"checkpoint-{self.loop['step']}"
        if path.parent.name == "checkpoints":
            self.loop["last_checkpoint"] = str(path)
        acc.wait_for_everyone()
        if acc.is_main_process:
            save_checkpoint(path, model=self.unwrapped, tokenizer=self.tokenizer, optimizer=self.optimizer,
                            scheduler=self.scheduler, loop_state=dict(self.loop), paft_generator=self.paft_generator)
            if prune and path.parent.name == "checkpoints":
                prune_checkpoints(path.parent, self.cfg.save_total_limit)
        acc.wait_for_everyone()
        return path

    @staticmethod
    def _truncate_metrics(path: Path, step: int) -> None:
        """On resume, drop metric lines past the checkpoint's step so the file continues exactly."""
        if not path.exists():
            return
        keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
        path.write_text("".join(k + "\n" for k in keep))
