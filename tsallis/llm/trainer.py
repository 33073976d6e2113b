"""One training loop for GRPO, GARL, PAFT and SFT on any local Hugging Face causal LM (torch, transformers, accelerate).

The trainer composes small parts: the data (`data.load_examples`), model loading (`loading`), the one sampling
engine (`rollout.generate_rollout`), one method object per estimator (`estimators.ESTIMATORS`: where answers come
from, the loss on a scored batch, its metrics), a typed loop state (`LoopState`), checkpoints (`checkpoint`) and
the run log (`tracking.RunLog`: metrics.jsonl and accelerate's trackers).

Per optimizer step (`Trainer.step`): (1) this process's shard of the next `prompts_per_step` prompts, split into
micro-batches; (2) per micro-batch, M rationales per prompt (and answers) in one `generate` call with budget
forcing, or the gold rationales for SFT; (3) rewards of the sampled completions (`reward_funcs`, TRL's signature,
weighted by `reward_weights`); (4) the method's
`prepare` (GRPO: advantages, token count); (5) per micro-batch ONE teacher-forced forward with gradients over
[prompt, rationale, delimiter, answer], the method's loss, divided by the number of micro-batches, backward;
(6) clip, NaN/inf guard, optimizer step; (7) metrics. `train` runs steps, evaluates and checkpoints on schedule.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tsallis.core import QSchedule, frac_zero_std
from tsallis.errors import DivergedError, InputError, NonFiniteError
from tsallis.llm import checkpoint as ckpt
from tsallis.llm import preempt
from tsallis.llm.config import DATASETS, TrainConfig
from tsallis.llm.data import (
    as_examples,
    check_chat_prompts,
    check_prompt_length,
    load_examples,
    render_prompt,
    warn_overflow,
)
from tsallis.llm.estimators import ESTIMATORS, Scored
from tsallis.llm.example import Example
from tsallis.llm.loading import (
    build_optimizer,
    hf_bars_off,
    load_policy,
    load_reference,
    lora_config,
    lr_lambda,
    shard_model,
)
from tsallis.llm.rewards import (
    RewardFunc,
    exact_answer,
    exact_match_reward,
    required_columns,
    resolve_reward_func,
    reward_name,
    score_reward_funcs,
)
from tsallis.llm.rollout import (
    EVAL_STREAM,
    LOG_P_STREAM,
    Rollout,
    ScoredBatch,
    build_scored_batch,
    generate_rollout,
    prompt_seeds,
    stop_ids,
    token_logps,
)
from tsallis.llm.rundir import RunLock, check_run_folder, clear_run, holds_run
from tsallis.llm.tracking import RunLog, check_trackers

__all__ = ["LoopState", "NonFiniteError", "TrainResult", "Trainer"]

log = logging.getLogger("tsallis.llm")


def _nanstd(x: torch.Tensor) -> float:
    """The sample standard deviation of the non-NaN entries (0 for fewer than two)."""
    x = x[~x.isnan()]
    return float(x.std()) if x.numel() > 1 else 0.0

EvaluateFn = Callable[["Trainer"], dict[str, float]]
Callback = Callable[["Trainer", dict[str, Any]], None]
Stop = Callable[["Trainer", dict[str, Any]], bool]


@dataclass
class LoopState:
    """Everything the loop carries from one step to the next; saved in every checkpoint (JSON-serialisable)."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # data epoch (its permutation is seeded by (seed, epoch))
    pos: int = 0  # position in the epoch's permutation
    switched: bool = False  # a "step" q schedule has switched
    running_success: float = 0.0  # EMA of the method's success metric (drives step/adaptive q schedules)
    best_metric: float | None = None  # best `eval_metric` so far
    last_checkpoint: str | None = None
    best_checkpoint: str | None = None
    num_tokens: int = 0  # tokens of the scored batches so far, all processes (TRL's num_tokens)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> LoopState:
        """From `to_dict` output (fields missing from older checkpoints take their defaults)."""
        unknown = set(state) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"loop state has unknown fields {sorted(unknown)}")
        return cls(**state)


@dataclass(frozen=True)
class TrainResult:
    """What `Trainer.train` returns: the per-step metric dicts, the final step and checkpoint paths."""

    history: list[dict[str, Any]]
    step: int
    last_checkpoint: str | None
    best_checkpoint: str | None


class Trainer:
    """Train a causal LM with `config.method` on a list of Examples.

    Args:
        config: the run configuration.
        train_examples, eval_examples: Examples, a `datasets.Dataset` or a list of row dicts with a `prompt` column
            (plain or conversational) and `answer` (default: from `config.task`).
        reward_funcs: reward functions with TRL's signature `f(prompts, completions, completion_ids, **columns) ->
            list[float | None]` (`tsallis.llm.rewards.RewardFunc`), or names of `rewards.REWARD_FUNCS`; default
            `config.reward_funcs` (exact match, paper Sec. 7). Weighted by `config.reward_weights`; GRPO trains on
            the weighted sum, GARL/PAFT only log it (their weight is p(y*|x, z)).
        peft_config: a `peft.LoraConfig` (as TRL's `peft_config=`); default from `config.lora_config` and the
            lora_* fields.
        evaluate_fn: called every `eval_every` steps as evaluate_fn(trainer) -> {name: value};
            `config.eval_metric` selects the best checkpoint (saved to output_dir/best). Default: the built-in
            sampled accuracy on eval_examples (toy, jsonl) or the paper's metrics (datasets), when there are any.
        resume_from: a checkpoint directory (or run directory) to continue exactly.
        cache_dir: cache of the pretrained toy model.
    """

    def __init__(self, config: TrainConfig, train_examples: Any = None, eval_examples: Any = None, *,
                 reward_funcs: RewardFunc | str | Sequence[RewardFunc | str] | None = None,
                 evaluate_fn: EvaluateFn | None = None, resume_from: str | os.PathLike | None = None,
                 cache_dir: str | None = None, peft_config: Any = None):
        from accelerate.utils import set_seed

        self.cfg = cfg = config
        train_examples, eval_examples = as_examples(train_examples, "train_examples"), as_examples(
            eval_examples, "eval_examples")
        if train_examples is None:
            train_examples, default_eval = load_examples(cfg)
            eval_examples = default_eval if eval_examples is None else eval_examples
        self.train_examples, self.eval_examples = list(train_examples), list(eval_examples or [])
        self._check_examples()
        self.reward_funcs = self._reward_funcs(reward_funcs)
        self.lora = peft_config if peft_config is not None else lora_config(cfg)
        self.accelerator = self._make_accelerator()
        set_seed(cfg.seed, device_specific=True)
        self.output_dir = Path(cfg.output_dir)
        self.lock = RunLock(self.output_dir)
        self.resume_path = self._open_run(resume_from)
        try:
            self._build(cache_dir)
        finally:  # taken again (and the folder checked again) by train()
            self.lock.release()
        if evaluate_fn is None and self.eval_examples:
            evaluate_fn = self.dataset_evaluate_fn() if cfg.task in DATASETS else Trainer.evaluate_accuracy
        self.evaluate_fn = evaluate_fn
        self.history: list[dict[str, Any]] = []

    def _build(self, cache_dir: str | None) -> None:
        """Model, tokenizer, method, reference, optimizer, schedule and loop state (restored when resuming)."""
        cfg, acc = self.cfg, self.accelerator
        on_cuda = acc.device.type == "cuda"
        model, self.tokenizer, base = load_policy(cfg, self.resume_path, cache_dir=cache_dir, on_cuda=on_cuda,
                                                  lora=self.lora)
        self.delimiter_ids = self.tokenizer(cfg.resolved_delimiter, add_special_tokens=False)["input_ids"]
        if not self.delimiter_ids:
            raise InputError(f"the delimiter {cfg.resolved_delimiter!r} tokenizes to nothing: choose another")
        self.eos_id = self.tokenizer.eos_token_id  # teacher-forced after y*
        self.stop_ids = stop_ids(self.tokenizer, model)  # any of them ends a sampled answer
        self.method = ESTIMATORS[cfg.method].from_config(cfg, delimiter_len=len(self.delimiter_ids),
                                                         process_index=acc.process_index)
        self._check_prompts(model)
        # the KL reference: the adapter-disabled model with LoRA (as TRL), else a frozen full copy
        self.ref_model = (load_reference(base, cfg, acc.device, on_cuda=on_cuda)
                          if self.method.needs_reference and self.lora is None else None)
        self.fsdp = cfg.fsdp
        self.model, self.optimizer, self.scheduler = self._prepare(model)
        self.schedule = QSchedule(cfg.q_schedule, q_start=cfg.q, q_end=cfg.q_end, switch_at=cfg.q_switch_at,
                                  switch_p=cfg.q_switch_p)
        self.state = LoopState()
        self._param_norm: float | None = None
        if self.resume_path is not None:
            self._restore(self.resume_path)

    def _open_run(self, resume_from) -> Path | None:
        """Before any model loads: the main process takes the run folder's lock, refuses a folder that holds
        another run and cleans up after a kill; the checkpoint to resume from, whose saved config must agree with
        this one (`TrainConfig.resume_changes`)."""
        cfg = self.cfg

        def on_main():
            self.lock.acquire()
            try:  # undo what a kill left in this folder first (only the lock holder may), then resolve
                for folder in (self.output_dir, self.output_dir / "checkpoints"):
                    for note in ckpt.recover(folder):
                        log.warning("%s: %s", folder, note)
                path = ckpt.resolve_checkpoint(resume_from) if resume_from is not None else None
                check_run_folder(self.output_dir, resume_path=path, overwrite=cfg.overwrite_output_dir)
            except BaseException:
                self.lock.release()
                raise
            return path

        path = self._on_main(on_main)
        self.resume_changes: dict[str, tuple[Any, Any]] = {}
        if path is not None:
            saved = ckpt.checkpoint_config(path)
            self.resume_changes, refused = cfg.resume_changes(saved)
            if refused:
                self.lock.release()
                said = "; ".join(f"{k}: {old!r} in the run, {new!r} now" for k, (old, new) in refused.items())
                raise InputError(f"--resume {str(path)!r} continues a run made with other values of what defines it "
                                 f"({said}). Resume with the run's values (the CLI takes them from the checkpoint "
                                 "when no flag or --config says otherwise), or start a new run in another "
                                 "--output-dir")
            for k, (old, new) in self.resume_changes.items():
                log.warning("resume: %s changed from %r to %r", k, old, new)
        return path

    def _on_main(self, fn: Callable[[], Any]) -> Any:
        """fn() on the main process, its result (or its InputError) shared with every process."""
        acc = self.accelerator
        if acc.num_processes == 1:
            return fn()
        from accelerate.utils import broadcast_object_list

        out, err = None, None
        if acc.is_main_process:
            try:
                out = fn()
            except InputError as e:
                err = str(e)
        out, err = broadcast_object_list([out, err])
        if err is not None:
            raise InputError(err)
        return out

    def _check_examples(self) -> None:
        if not self.train_examples:
            raise InputError("no training examples: pass a non-empty list or a task with a training split")
        if ESTIMATORS[self.cfg.method].rationales == "gold" and any(ex.rationale is None for ex in self.train_examples):
            raise InputError(f"method={self.cfg.method!r} trains on gold rationales: some training examples have "
                             "rationale=None")

    def _reward_funcs(self, funcs) -> list[RewardFunc]:
        """The reward functions (callables, or names of REWARD_FUNCS), each checked to find its columns."""
        cfg = self.cfg
        funcs = cfg.reward_funcs if funcs is None else ([funcs] if callable(funcs) or isinstance(funcs, str) else funcs)
        out = []
        for f in funcs:  # a name of REWARD_FUNCS, an import path ('module:fn', 'file.py:fn') or a callable
            out.append(resolve_reward_func(f) if isinstance(f, str) else f)
        if not out or not all(callable(f) for f in out):
            raise InputError("reward_funcs must be a non-empty list of callables or REWARD_FUNCS names")
        if cfg.reward_weights is not None and len(cfg.reward_weights) != len(out):
            raise InputError(f"reward_weights has {len(cfg.reward_weights)} weight(s) for {len(out)} reward "
                             f"function(s): give one weight per function")
        for f in out:  # a column a function names without a default must be in every row
            need = required_columns(f) - {"answer", "aliases", "id", "task", "rationale"}
            for ex in self.train_examples + self.eval_examples if need else []:
                missing = need - set(ex.meta)
                if missing:
                    raise InputError(f"reward function {reward_name(f)!r} needs the column(s) {sorted(missing)}, "
                                     f"which {ex.source or 'example ' + repr(ex.id)} lacks")
        return out

    def _check_prompts(self, model) -> None:
        """Before any step: no prompt wrapped twice by the chat template, and every prompt with its completion
        budget within the model's context (a prompt that is too long would otherwise fail mid-step, or try to
        allocate the attention of a million tokens)."""
        cfg, examples = self.cfg, self.train_examples + self.eval_examples
        check_chat_prompts(examples, self.tokenizer, chat_template=cfg.chat_template)
        context = getattr(model.config, "max_position_embeddings", None)
        if not isinstance(context, int):
            return
        D, gold = len(self.delimiter_ids), self.method.answers == "gold"
        over, budget = [], 0
        for ex in examples:
            z = len(self.tokenizer(ex.rationale, add_special_tokens=False)["input_ids"]) if (
                self.method.rationales == "gold" and ex.rationale) else cfg.max_rationale_tokens
            budget = z + D + max(cfg.max_answer_tokens, len(self.encode_answer(ex.answer)) if gold else 0)
            if check_prompt_length(ex, len(self.encode_prompt(ex.prompt)), budget, context):
                over.append(ex)
        warn_overflow(over, budget, context)

    def _make_accelerator(self):
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration

        cfg = self.cfg
        check_trackers(cfg.trackers)
        acc = Accelerator(mixed_precision=cfg.mixed_precision, log_with=cfg.trackers or None,
                          project_config=ProjectConfiguration(project_dir=cfg.output_dir,
                                                              logging_dir=str(Path(cfg.output_dir) / "logs")))
        if cfg.prompts_per_step % (acc.num_processes * cfg.gradient_accumulation_steps):
            raise InputError(f"prompts_per_step={cfg.prompts_per_step} must be divisible by the number of processes "
                             f"({acc.num_processes}) x gradient_accumulation_steps ({cfg.gradient_accumulation_steps})"
                             f": each process splits its share into equal micro-batches (e.g. on 8 GPUs with "
                             f"prompts_per_step 8, set --gradient-accumulation-steps 1)")
        if cfg.fsdp and not torch.distributed.is_initialized():
            raise InputError("fsdp=True needs a distributed launch: torchrun --nproc_per_node N (CPU: with "
                             "ACCELERATE_USE_CPU=true) or accelerate launch")
        return acc

    def _prepare(self, model):
        """(model, optimizer, scheduler) placed by accelerate (DDP when distributed) or sharded with FSDP2."""
        acc = self.accelerator
        if self.fsdp:
            model = shard_model(model.to(acc.device))
            optimizer = acc.prepare(build_optimizer(model, self.cfg))
        else:
            model, optimizer = acc.prepare(model, build_optimizer(model, self.cfg))
        scheduler = torch.optim.lr_scheduler.LambdaLR(getattr(optimizer, "optimizer", optimizer), lr_lambda(self.cfg))
        return model, optimizer, scheduler

    # ---------------------------------------------------------------------------------------------- loop

    def train(self, *, callbacks: Sequence[Callback] = (), stop: Stop | None = None) -> TrainResult:
        """Run steps until `max_steps`, or until `stop(trainer, metrics)` returns True; returns the history.

        After each step: the evaluation hook (every `eval_every` steps), then each `callback(trainer, metrics)` (a
        callback may add keys to `metrics`; they are logged), then metrics.jsonl and the trackers, the progress
        bar and the checkpoint schedule; a final checkpoint at the end. Raises NonFiniteError on NaN/inf (no
        update made; the error is logged with the last good checkpoint).
        """

        cfg, st = self.cfg, self.state
        try:
            if self.accelerator.is_main_process:  # another run may have started in the folder since __init__
                self.lock.acquire()
                if cfg.overwrite_output_dir and holds_run(self.output_dir):
                    clear_run(self.output_dir, keep=self.resume_path)
                elif st.step == 0 or self.resume_path is not None:
                    check_run_folder(self.output_dir, resume_path=self.resume_path, overwrite=False)
            with preempt.on_signals() as signals:  # SIGTERM/SIGINT: finish the step, save, raise Preempted
                result = self._train(callbacks, signals.stop_after(stop))
            signals.raise_if_stopped(self)
            return result
        finally:
            self.lock.release()

    def _train(self, callbacks: Sequence[Callback], stop: Stop | None) -> TrainResult:
        from tqdm.auto import tqdm

        cfg, st = self.cfg, self.state
        run_log = RunLog(self.accelerator, self.output_dir, config=cfg.to_dict(), resume_step=st.step,
                         trackers=cfg.trackers)
        bar = tqdm(total=cfg.max_steps, initial=st.step, desc=f"{cfg.method} q={cfg.q:g}", dynamic_ncols=True,
                   disable=not (cfg.progress_bar and self.accelerator.is_main_process))
        with run_log, bar, hf_bars_off():  # HF's per-save bars would break ours
            while st.step < cfg.max_steps:
                m = self._guarded_step(run_log)
                if cfg.eval_every and self.evaluate_fn and st.step % cfg.eval_every == 0:
                    m.update(self._evaluate())
                for callback in callbacks:
                    callback(self, m)
                run_log.write(m)
                self.history.append(m)
                bar.set_postfix({k: f"{m[k]:.3g}" for k in ("reward", "log_p_hat/mean", "weights/ess", "q",
                                                           "grad_norm", "eval/accuracy") if k in m}, refresh=False)
                bar.update(1)
                if cfg.save_every and st.step % cfg.save_every == 0 and st.step < cfg.max_steps:
                    self.save()
                if stop is not None and stop(self, m):
                    break
            self.save()
        return TrainResult(self.history, st.step, st.last_checkpoint, st.best_checkpoint)

    def step(self) -> dict[str, Any]:
        """One optimizer step; advances `state` and returns the step's metrics (docs/llm.md, "Metrics")."""
        acc, method = self.accelerator, self.method
        t0 = time.perf_counter()
        q = self.current_q()
        micro = self.micro_batches()  # [(examples, prompt seeds)], one per accumulation step
        rollouts = [self.make_rollout(exs, seeds) for exs, seeds in micro]
        scores = [self.score_rewards(ro, exs) for ro, (exs, _) in zip(rollouts, micro)]
        rewards = [total for total, _ in scores]  # (B, M) each, or None
        batches = [self.scored_batch(exs, ro, gold=method.answers == "gold") for ro, (exs, _) in zip(rollouts, micro)]
        extras = method.prepare(rewards, batches, self._mean_over_processes)
        t_rollout = time.perf_counter() - t0
        self.model.train()
        losses, outs, entropy = [], [], []
        for i, (batch, extra) in enumerate(zip(batches, extras)):
            with acc.no_sync(self.model) if i < len(batches) - 1 else contextlib.nullcontext():
                scored, ent = self.forward(batch, extra)
                out = method.loss(scored, q=q)
                loss = out.loss / len(batches)  # gradient accumulation: the one place it is scaled
                if not bool(torch.isfinite(loss.detach())):
                    raise NonFiniteError(f"the loss is {float(loss)}")
                acc.backward(loss)
            losses.append(float(loss.detach()))
            outs.append(out)
            entropy.append(ent)
        grad_norm = self.clip_gradients()
        if self._param_norm is None:
            self._param_norm = self.param_norm()
        self.optimizer.step()
        self._param_norm = self._check_update(self._param_norm)
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        m = self._metrics(q, sum(losses), outs, entropy, grad_norm, micro, rollouts, scores, batches)
        m["param_norm"] = self._param_norm
        m.update({"step_time": time.perf_counter() - t0, "time/rollout": t_rollout})
        m["time/update"], m["tokens_per_s"] = m["step_time"] - t_rollout, m["step_tokens"] / m["step_time"]
        self.state.step += 1
        return m

    # ------------------------------------------------------------------------------------ parts of a step

    def current_q(self) -> float:
        """q of this step (the schedule at `state.step`; a "step" schedule may switch here)."""
        st = self.state
        if self.schedule.kind == "step" and not st.switched:
            st.switched = self.schedule.should_switch(st.step, st.running_success)
        return float(self.schedule(st.step, self.cfg.max_steps, p=st.running_success, switched=st.switched))

    def next_prompts(self) -> tuple[list[Example], list[int]]:
        """This process's shard of the next `prompts_per_step` examples (epoch permutations seeded by `seed`) and
        the sampling seed of each, a function of (seed, step, index in the global batch) only: a prompt's rollouts
        are the same whatever the number of processes and micro-batches."""
        cfg, acc, st = self.cfg, self.accelerator, self.state
        out: list[Example] = []
        while len(out) < cfg.prompts_per_step:
            order = np.random.default_rng([cfg.seed, st.epoch]).permutation(len(self.train_examples))
            take = min(cfg.prompts_per_step - len(out), len(order) - st.pos)
            out += [self.train_examples[i] for i in order[st.pos:st.pos + take]]
            st.pos += take
            if st.pos >= len(order):
                st.epoch, st.pos = st.epoch + 1, 0
        per = cfg.prompts_per_step // acc.num_processes
        start = acc.process_index * per
        return out[start:start + per], prompt_seeds(cfg.seed, st.step, per, start)

    def micro_batches(self) -> list[tuple[list[Example], list[int]]]:
        """`next_prompts` split into `gradient_accumulation_steps` equal (examples, seeds) micro-batches."""
        examples, seeds = self.next_prompts()
        gas = self.cfg.gradient_accumulation_steps
        per = len(examples) // gas
        return [(examples[i * per:(i + 1) * per], seeds[i * per:(i + 1) * per]) for i in range(gas)]

    def make_rollout(self, examples: Sequence[Example], seeds: Sequence[int]) -> Rollout:
        """The method's rollout: M sampled completions per prompt, or the gold rationales (SFT)."""
        if self.method.rationales == "gold":
            return Rollout([self.encode_prompt(ex.prompt) for ex in examples],
                           [self.tokenizer(ex.rationale, add_special_tokens=False)["input_ids"] for ex in examples],
                           [False] * len(examples), None)
        return self.rollout(examples, num_samples=self.method.group_size, sample_answers=self.cfg.sample_answers,
                            prompt_seeds=seeds)

    def completions(self, ro: Rollout) -> list[str]:
        """(N) the text of each sampled completion: rationale + delimiter + answer (a final stop token dropped)."""
        stops = set(self.stop_ids)
        return [self.tokenizer.decode(z + self.delimiter_ids + (a[:-1] if a and a[-1] in stops else a),
                                      skip_special_tokens=False)
                for z, a in zip(ro.rationale_ids, ro.answer_ids or [[]] * len(ro.rationale_ids))]

    @staticmethod
    def reward_columns(examples: Sequence[Example], M: int) -> dict[str, list[Any]]:
        """The dataset columns a reward function receives, one value per completion (each example M times):
        answer, aliases, id, task, rationale and every `meta` key (None where an example lacks it)."""
        keys = list(dict.fromkeys(k for ex in examples for k in ex.meta))
        rows = [{"answer": ex.answer, "aliases": list(ex.aliases), "id": ex.id, "task": ex.task,
                 "rationale": ex.rationale, **{k: ex.meta.get(k) for k in keys}} for ex in examples]
        return {k: [row[k] for row in rows for _ in range(M)] for k in (rows[0] if rows else {})}

    def score_rewards(self, ro: Rollout, examples: Sequence[Example]):
        """(weighted (B, M) rewards, {function name: (B, M) rewards}) of the sampled completions, from the reward
        functions called with TRL's keywords; (None, {}) without sampled answers. NaN marks a None."""
        if ro.answer_ids is None:
            return None, {}
        M = len(ro.rationale_ids) // len(examples)
        texts = self.completions(ro)
        chat = [not isinstance(ex.prompt, str) for ex in examples for _ in range(M)]
        per = score_reward_funcs(
            self.reward_funcs, prompts=[ex.prompt for ex in examples for _ in range(M)],
            completions=[[{"role": "assistant", "content": t}] if c else t for t, c in zip(texts, chat)],
            completion_ids=[z + self.delimiter_ids + a for z, a in zip(ro.rationale_ids, ro.answer_ids)],
            trainer_state=self.state, delimiter=self.cfg.resolved_delimiter, **self.reward_columns(examples, M))
        per = {k: torch.tensor(v, dtype=torch.float64).view(-1, M) for k, v in per.items()}
        weights = self.cfg.reward_weights or [1.0] * len(per)
        stacked = torch.stack([w * r for w, r in zip(weights, per.values())])  # (F, B, M)
        total = stacked.nansum(0).masked_fill(stacked.isnan().all(0), float("nan"))
        if self.method.answers == "sampled" and bool(total.isnan().any()):  # the reward is the training signal
            raise InputError("every reward function returned None for a completion: its reward, which the loss "
                             "needs, is undefined; return a number for every completion from at least one function")
        return total.to(torch.float32), per

    def scored_batch(self, examples: Sequence[Example], ro: Rollout, *, gold: bool) -> ScoredBatch:
        """The rows of one teacher-forced forward: gold y* (+EOS) after each rationale, or the sampled answer."""
        M = len(ro.rationale_ids) // len(examples)
        rows = [p for p in ro.prompt_ids for _ in range(M)]
        answers = [self.encode_answer(ex.answer) for ex in examples for _ in range(M)] if gold else ro.answer_ids
        return build_scored_batch(rows, ro.rationale_ids, ro.forced, self.delimiter_ids, answers,
                                  self.tokenizer.pad_token_id)

    def forward(self, batch: ScoredBatch, extra: dict[str, Any]) -> tuple[Scored, float]:
        """The teacher-forced forward with gradients (and the reference's, if the method wants it); the mean
        token entropy of the scored tokens."""
        batch = batch.to(self.accelerator.device)
        with self.accelerator.autocast():
            logps, ent = token_logps(self.model, batch, entropy=True)
        ref = self.reference_logps(batch) if self.method.needs_reference else None
        mask = batch.rationale_mask | batch.answer_mask
        entropy = float((ent * mask).sum() / mask.sum().clamp(min=1))
        return Scored(batch, logps, self.method.group_size, ref, extra), entropy

    @torch.no_grad()
    def reference_logps(self, batch: ScoredBatch) -> torch.Tensor:
        """(N, C) log-probs under the KL reference: the LoRA-disabled policy (as TRL), else the frozen copy."""
        if self.ref_model is not None:
            model, ctx = self.ref_model, contextlib.nullcontext()
        else:
            model = self.unwrapped
            ctx = model.disable_adapter()
        with ctx, self.accelerator.autocast():
            return token_logps(model, batch)[0]

    def clip_gradients(self) -> float:
        """Clip to `max_grad_norm` (0: measure only); the norm before clipping. Raises NonFiniteError."""
        max_norm = self.cfg.max_grad_norm if self.cfg.max_grad_norm > 0 else float("inf")
        if self.fsdp:  # DTensor gradients: torch's clip returns a DTensor norm
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
            norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        else:
            norm = self.accelerator.clip_grad_norm_(self.model.parameters(), max_norm)
        norm = float(norm) if norm is not None else float("nan")
        if not math.isfinite(norm):
            raise NonFiniteError(f"the gradient norm is {norm}")
        return norm

    @torch.no_grad()
    def _norms(self) -> tuple[float, float]:
        """(norm of the trainable parameters, norm of the optimizer state), over all processes' shards (float64:
        a finite value never overflows here, a NaN or inf shows as one)."""
        def sq(tensors) -> torch.Tensor:
            parts = [torch.linalg.vector_norm(t.to_local() if hasattr(t, "to_local") else t, dtype=torch.float64)
                     for t in tensors if t.is_floating_point()]
            return torch.stack(parts).square().sum() if parts else torch.zeros((), dtype=torch.float64)

        opt = getattr(self.optimizer, "optimizer", self.optimizer)
        params = [p.detach() for p in self.model.parameters() if p.requires_grad]
        state = [v.detach() for s in opt.state.values() for v in s.values() if torch.is_tensor(v)]
        total = torch.stack([sq(params).to(self.accelerator.device), sq(state).to(self.accelerator.device)])
        if self.fsdp:
            torch.distributed.all_reduce(total)
        return float(total[0].sqrt()), float(total[1].sqrt())

    def param_norm(self) -> float:
        """The norm of the trainable parameters (all processes' shards)."""
        return self._norms()[0]

    def _check_update(self, before: float) -> float:
        """After the optimizer step: the parameters and optimizer state must be finite, and the parameters' norm
        must not have grown by more than `max_param_growth` in the step. Returns the new norm."""
        after, state = self._norms()
        if not math.isfinite(after):
            raise NonFiniteError(f"the parameters are {after} after the optimizer step (norm)")
        if not math.isfinite(state):
            raise NonFiniteError(f"the optimizer state is {state} after the optimizer step (norm)")
        growth = self.cfg.max_param_growth
        if growth and before > 0 and after > growth * before:
            raise DivergedError(f"the updates explode: one optimizer step took the parameters' norm from {before:.4g} "
                                f"to {after:.4g} (x{after / before:.3g} > max_param_growth {growth:g}); lower "
                                f"learning_rate (now {self.cfg.learning_rate:g})")
        return after

    def _mean_over_processes(self, value: float) -> float:
        acc = self.accelerator
        return float(acc.gather(torch.tensor([value], device=acc.device)).mean())

    def _gather(self, t: torch.Tensor) -> torch.Tensor:
        return self.accelerator.gather(t.to(self.accelerator.device)).cpu()

    def _metrics(self, q, loss, outs, entropy, grad_norm, micro, rollouts, scores, batches) -> dict[str, Any]:
        """The step's metrics; loss, reward, accuracy and num_tokens are global-batch values."""
        st, D = self.state, len(self.delimiter_ids)
        scored = sum(int(b.attention_mask.sum()) for b in batches)
        m: dict[str, Any] = {"step": st.step + 1, "q": q, "grad_norm": grad_norm,
                             "learning_rate": self.scheduler.get_last_lr()[0]}
        for k in outs[0].stats:
            m[k] = float(np.mean([o.stats[k] for o in outs]))
        m["entropy"] = float(np.mean(entropy))
        totals = self._gather(torch.tensor([loss, scored], dtype=torch.float64)).view(-1, 2)
        m["loss"] = float(totals[:, 0].mean())
        if scores[0][0] is not None:
            reward = self._gather(torch.cat([total for total, _ in scores]))
            m["reward"] = float(reward.nanmean())
            m["reward_std"] = _nanstd(reward)
            m["frac_reward_zero_std"] = frac_zero_std(reward)
            for name in scores[0][1]:
                r = self._gather(torch.cat([per[name] for _, per in scores]))
                m[f"rewards/{name}/mean"], m[f"rewards/{name}/std"] = float(r.nanmean()), _nanstd(r)
            M = self.method.group_size
            acc = [v for ro, (exs, _) in zip(rollouts, micro) for v in exact_answer(
                None, self.completions(ro), None, answer=[ex.answer for ex in exs for _ in range(M)],
                delimiter=self.cfg.resolved_delimiter)]
            m["accuracy"] = float(self._gather(torch.tensor(acc, dtype=torch.float64)).mean())
        if self.method.rationales == "sampled":
            rows = [(z, f, a) for ro in rollouts
                    for z, f, a in zip(ro.rationale_ids, ro.forced, ro.answer_ids or [[]] * len(ro.forced))]
            m["completions/mean_length"] = float(np.mean([len(z) + D + len(a) for z, _, a in rows]))
            m["rationale/mean_length"] = float(np.mean([len(z) for z, _, _ in rows]))
            m["completions/clipped_ratio"] = float(np.mean([f for _, f, _ in rows]))
        ema = self.cfg.success_ema
        st.running_success = ema * st.running_success + (1 - ema) * m.get(self.method.success_metric, 0.0)
        st.num_tokens += int(totals[:, 1].sum())
        m["running_success"], m["num_tokens"] = st.running_success, st.num_tokens
        m["step_tokens"] = sum(ro.num_generated_tokens for ro in rollouts) + scored
        return m

    # ------------------------------------------------------------------------------------- sampling, text

    @property
    def unwrapped(self):
        """The model without its DDP wrapper (an FSDP2 model is its own module)."""
        return self.accelerator.unwrap_model(self.model)

    @property
    def synced_gpus(self) -> bool:
        """Generation must run the same number of forwards on every rank (FSDP all-gathers in each forward)."""
        return self.fsdp and self.accelerator.num_processes > 1

    def format_prompt(self, prompt: Any) -> str:
        """The prompt as the model sees it: a conversational prompt (or a string, with `chat_template`) through the
        tokenizer's chat template (`data.render_prompt`)."""
        return render_prompt(prompt, self.tokenizer, chat_template=self.cfg.chat_template)

    def encode_prompt(self, prompt: Any) -> list[int]:
        """Token ids of the formatted prompt (no special tokens added: the prompt is the full model input)."""
        return self.tokenizer(self.format_prompt(prompt), add_special_tokens=False)["input_ids"]

    def encode_answer(self, answer: str) -> list[int]:
        """Token ids of a gold answer, + EOS with `answer_eos` (what GARL/PAFT/SFT teacher-force)."""
        ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
        return ids + [self.eos_id] if self.cfg.answer_eos else ids

    def decode_answer(self, ids: list[int]) -> str | None:
        """A sampled answer's text, stripped, special tokens dropped; None when empty."""
        text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return text or None

    def rollout(self, examples: Sequence[Example], *, num_samples: int, sample_answers: bool,
                temperature: float | None = None, max_rationale_tokens: int | None = None,
                prompt_seeds: Sequence[int] | None = None) -> Rollout:
        """Sample with the one engine (`rollout.generate_rollout`): `num_samples` completions per example, decoded
        answers in `answer_text`. `temperature` None: the config's (0: greedy). `prompt_seeds` None: the
        evaluation stream keyed by position in `examples`."""
        cfg, model = self.cfg, self.unwrapped
        seeds = prompt_seeds if prompt_seeds is not None else self.eval_seeds(len(examples))
        was_training = model.training
        model.eval()
        try:
            with self.accelerator.autocast():
                ro = generate_rollout(
                    model, [self.encode_prompt(ex.prompt) for ex in examples], num_samples=num_samples,
                    prompt_seeds=seeds, delimiter_ids=self.delimiter_ids, stop_ids=self.stop_ids,
                    pad_id=self.tokenizer.pad_token_id, max_answer_tokens=cfg.max_answer_tokens,
                    max_rationale_tokens=max_rationale_tokens or cfg.max_rationale_tokens, top_p=cfg.top_p,
                    temperature=cfg.temperature if temperature is None else temperature,
                    sample_answers=sample_answers, synced_gpus=self.synced_gpus, inference_mode=not self.fsdp)
        finally:
            model.train(was_training)
        if ro.answer_ids is not None:
            ro.answer_text = [self.decode_answer(a) for a in ro.answer_ids]
        return ro

    def eval_seeds(self, count: int, start: int = 0, stream: int = EVAL_STREAM) -> list[int]:
        """Seeds of evaluation prompts start..start+count-1 (common random numbers across checkpoints)."""
        return prompt_seeds(self.cfg.seed, stream, count, start)

    # -------------------------------------------------------------------------------------- evaluation

    @torch.no_grad()
    def answers(self, examples: Sequence[Example], *, num_samples: int = 1, batch_size: int = 64,
                temperature: float | None = None, progress: bool = False) -> list[list[str | None]]:
        """Sampled answers, num_samples per example (temperature 0: greedy); independent of `batch_size`.
        `progress`: a tqdm bar over the examples."""
        from tqdm.auto import tqdm

        out: list[list[str | None]] = []
        for s in tqdm(range(0, len(examples), batch_size), desc="eval", unit="batch", leave=False,
                      disable=not progress, dynamic_ncols=True):
            chunk = list(examples[s:s + batch_size])
            ro = self.rollout(chunk, num_samples=num_samples, sample_answers=True, temperature=temperature,
                              prompt_seeds=self.eval_seeds(len(chunk), s))
            out += [ro.answer_text[i * num_samples:(i + 1) * num_samples] for i in range(len(chunk))]
        return out

    def evaluate_accuracy(self) -> dict[str, float]:
        """Built-in evaluation: mean exact-match accuracy of `eval_samples` sampled answers per eval example."""
        ans = self.answers(self.eval_examples, num_samples=self.cfg.eval_samples,
                           progress=self.cfg.progress_bar and self.accelerator.is_main_process)
        correct = [exact_match_reward(a, ex) for ex, row in zip(self.eval_examples, ans) for a in row]
        return {"eval/accuracy": float(np.mean(correct))}

    def dataset_evaluate_fn(self) -> EvaluateFn:
        """The paper's evaluation as a hook: `eval_samples` samples per `eval_examples` prompt with budget forcing,
        scored by `eval_scorer` -> eval/p@1, eval/p@k, eval/maj@k, ... (`tsallis.llm.evaluate.make_evaluate_fn`)."""
        import dataclasses

        from tsallis.llm.evaluate import make_evaluate_fn

        cfg = self.cfg
        examples = [dataclasses.replace(ex, prompt=self.format_prompt(ex.prompt)) for ex in self.eval_examples]
        return make_evaluate_fn(
            examples, k=cfg.eval_samples, scorer=cfg.eval_scorer, ties=cfg.eval_ties,
            max_rationale_tokens=cfg.max_rationale_tokens, max_answer_tokens=cfg.max_answer_tokens,
            temperature=cfg.temperature, top_p=cfg.top_p, delimiter=cfg.resolved_delimiter,
            batch_size=cfg.eval_batch_size, seed=cfg.seed,
            progress=cfg.progress_bar and self.accelerator.is_main_process)

    @torch.no_grad()
    def estimate_log_p(self, examples: Sequence[Example], *, num_samples: int = 32, batch_size: int = 16) -> np.ndarray:
        """Monte Carlo log P-hat(y*|x) = log mean_m p(y*|x, z_m), z_m ~ p(z|x) with budget forcing, per example."""
        from tsallis.core import log_mean_w

        out = []
        for s in range(0, len(examples), batch_size):
            chunk = list(examples[s:s + batch_size])
            ro = self.rollout(chunk, num_samples=num_samples, sample_answers=False,
                              prompt_seeds=self.eval_seeds(len(chunk), s, LOG_P_STREAM))
            batch = self.scored_batch(chunk, ro, gold=True).to(self.accelerator.device)
            with self.accelerator.autocast():
                logps, _ = token_logps(self.unwrapped, batch)
            log_w = (logps * batch.answer_mask).cpu().sum(-1).view(len(chunk), num_samples).double()
            out.append(log_mean_w(log_w).numpy())
        return np.concatenate(out)

    def _evaluate(self) -> dict[str, float]:
        res = self.evaluate_fn(self)
        val = res.get(self.cfg.eval_metric)
        if self.accelerator.num_processes > 1:  # every rank evaluates; all follow the main process's value
            from accelerate.utils import broadcast_object_list

            res, val = broadcast_object_list([res, val])
        if val is not None and (self.state.best_metric is None or val > self.state.best_metric):
            self.state.best_metric = float(val)
            self.state.best_checkpoint = str(self.output_dir / "best")
            self.save(self.output_dir / "best", prune=False)
        return res

    def _guarded_step(self, run_log: RunLog) -> dict[str, Any]:
        try:
            return self.step()
        except (NonFiniteError, DivergedError) as err:
            last = self.state.last_checkpoint or "none saved yet (set save_every)"
            guard = "NaN/inf guard" if isinstance(err, NonFiniteError) else "divergence guard"
            msg = (f"{guard}: {err} at step {self.state.step + 1}; the run stopped and saved nothing of this step. "
                   f"Last good checkpoint: {last}. Lower learning_rate or check the data, then --resume.")
            run_log.error(self.state.step + 1, msg)
            raise type(err)(msg) from err

    # ------------------------------------------------------------------------------------------- state

    def save(self, path: Path | None = None, *, prune: bool = True) -> Path:
        """Atomic checkpoint of the whole training state: every process writes its RNG and method state (and with
        FSDP its shards), the main process the rest, then moves it into place (`checkpoint`); all wait. A step
        checkpoint (under output_dir/checkpoints) becomes `latest`. Refuses to save non-finite weights."""
        acc, st, cfg = self.accelerator, self.state, self.cfg
        path = Path(path) if path is not None else self.output_dir / "checkpoints" / f"checkpoint-{st.step}"
        is_step = path.parent.name == "checkpoints"
        params, state = self._norms()
        if not (math.isfinite(params) and math.isfinite(state)):
            raise NonFiniteError(f"not saving {path}: the parameters (norm {params}) or optimizer state (norm {state}) "
                                 f"are not finite; the last good checkpoint is {st.last_checkpoint}")
        kept, loop = st.last_checkpoint, st.to_dict()
        if is_step:
            loop["last_checkpoint"] = str(path)
        acc.wait_for_everyone()
        with ckpt.disk_errors(path, kept):
            tmp = self._on_main(lambda: ckpt.begin_checkpoint(path))
            try:
                ckpt.write_rank_state(tmp, acc.process_index, self.method.state_dict())
                full = None
                if self.fsdp:
                    ckpt.save_sharded(tmp, self.model, self.optimizer.optimizer)
                    full = ckpt.full_state_dict(self.model)
                acc.wait_for_everyone()
                if acc.is_main_process:
                    ckpt.write_checkpoint(tmp, model=self.unwrapped, tokenizer=self.tokenizer,
                                          optimizer=None if self.fsdp else self.optimizer, scheduler=self.scheduler,
                                          loop_state=loop, config=cfg.to_dict(), num_processes=acc.num_processes,
                                          state_dict=full)
                    ckpt.commit_checkpoint(tmp, path, latest=is_step)
            finally:
                if acc.is_main_process and tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        if is_step:
            st.last_checkpoint = str(path)
            if acc.is_main_process and prune:
                ckpt.prune_checkpoints(path.parent, cfg.save_total_limit, protect=path)
        acc.wait_for_everyone()
        return path

    def _restore(self, path: Path) -> None:
        acc = self.accelerator
        state = ckpt.load_trainer_state(path, acc.process_index)
        if state.get("num_processes") != acc.num_processes and self.method.state_dict():
            raise InputError(f"checkpoint {str(path)!r} was written by {state.get('num_processes')} process(es); "
                             f"{self.cfg.method}'s state is per process: resume with that many processes")
        opt = getattr(self.optimizer, "optimizer", self.optimizer)
        if self.fsdp:
            ckpt.load_sharded(path, self.model, opt)
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if {"learning_rate", "max_steps"} & set(self.resume_changes):  # the new rate (and schedule) from now on
            factor = lr_lambda(self.cfg)(self.scheduler.last_epoch)
            self.scheduler.base_lrs = [self.cfg.learning_rate for _ in opt.param_groups]
            for group in opt.param_groups:
                group["initial_lr"], group["lr"] = self.cfg.learning_rate, self.cfg.learning_rate * factor
            self.scheduler._last_lr = [group["lr"] for group in opt.param_groups]
        self.state = LoopState.from_dict(state["loop"])
        self.method.load_state_dict(state["method"])
        ckpt.set_rng_state(state["rng"])
