"""One training loop for GRPO, GARL, PAFT and SFT on any local Hugging Face causal LM (torch, transformers, accelerate).

`Trainer` builds the parts and runs the loop: the data (`data.load_examples`), the model (`loading`), the
`policy.Policy` that samples and scores (the one engine of `rollout.py`), one method object per estimator
(`estimators.ESTIMATORS`), the run folder (`rundir.RunFolder`: lock, recovery, resume, checkpoints), the update
guards (`guards.UpdateGuard`), the run log (`tracking.RunLog`) and TRL's habits (`trl_compat`). `Trainer.step` is
one optimizer step, written inline: prompts -> rollout -> rewards -> the method's loss -> backward -> clip ->
optimizer -> metrics, and one assignment of the new `LoopState`."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from tsallis.core import QSchedule
from tsallis.errors import DivergedError, InputError, NonFiniteError
from tsallis.llm import preempt
from tsallis.llm.config import TrainConfig
from tsallis.llm.estimators import ESTIMATORS, Scored
from tsallis.llm.guards import UpdateGuard
from tsallis.llm.launch import accelerate_fsdp_hidden, with_launcher_fsdp
from tsallis.llm.loading import load_policy, load_reference, lora_config
from tsallis.llm.placement import check_precision, make_accelerator, place
from tsallis.llm.policy import Policy
from tsallis.llm.rewards import RewardFunc, RewardModel
from tsallis.llm.rollout import ScoredBatch, token_logps
from tsallis.llm.run_data import trainer_data
from tsallis.llm.rundir import RunFolder
from tsallis.llm.step import (
    LoopState,
    MicroBatch,
    StepBatch,
    TrainResult,
    check_prompts,
    next_prompts,
    resolve_reward_funcs,
    score_rewards,
    split,
    step_metrics,
)
from tsallis.llm.tracking import RunLog
from tsallis.llm.trl_compat import CallbackRunner, resume_target, trainer_inputs

__all__ = ["LoopState", "NonFiniteError", "TrainResult", "Trainer"]

log = logging.getLogger("tsallis.llm")

EvaluateFn = Callable[["Trainer"], dict[str, float]]
Callback = Callable[["Trainer", dict[str, Any]], None]
Stop = Callable[["Trainer", dict[str, Any]], bool]


class Trainer:
    """Train a causal LM with `config.method` on a list of Examples; or as TRL's GRPOTrainer is called.

    Args:
        config: the run configuration (or `args=`: a TrainConfig, a `trl.GRPOConfig`, or a dict of fields).
        train_examples, eval_examples: Examples, a `datasets.Dataset` or a list of row dicts with a `prompt` column
            (plain or conversational) and `answer` (default: from `config.task`); rows given with task "toy" that
            are not the toy's make the run's task "dataset" (`run_data`: its folder keeps the eval rows). GRPO on
            rows without `answer` samples free completions, as TRL (`config.completion_format`).
        reward_funcs: reward functions with TRL's signature `f(prompts, completions, completion_ids, **columns) ->
            list[float | None]` (`tsallis.llm.rewards.RewardFunc`), names of `rewards.REWARD_FUNCS`, import paths,
            or a reward model's folder (`rewards.RewardModel`, loaded onto the policy's device); default
            `config.reward_funcs` (exact match, paper Sec. 7). Weighted by `config.reward_weights`; GRPO trains on
            the weighted sum, GARL/PAFT only log it (their weight is p(y*|x, z)).
        peft_config: a `peft.LoraConfig` (as TRL's); default from `config.lora_config` and the lora_* fields.
        evaluate_fn: called every `eval_every` steps as evaluate_fn(trainer) -> {name: value}; `config.eval_metric`
            selects the best checkpoint (saved to output_dir/best). Default (`evaluate.default_evaluate_fn`): p@1
            (= eval/accuracy), p@k, maj@k on eval_examples by `config.resolved_eval_scorer`, as `tsallis llm eval`.
        resume_from: a checkpoint directory (or run directory) to continue exactly (or, as transformers,
            `train(resume_from_checkpoint=...)`). cache_dir: the toy model's cache.
        **trl: GRPOTrainer's keywords (`trl_compat.trainer_inputs` checks them): `model=` (a path or a loaded
            PreTrainedModel), `args=`, `train_dataset=`, `eval_dataset=`, `processing_class=`, `callbacks=`.
    """

    def __init__(self, config: TrainConfig | Any = None, train_examples: Any = None, eval_examples: Any = None, *,
                 reward_funcs: RewardFunc | str | Sequence[RewardFunc | str] | None = None,
                 evaluate_fn: EvaluateFn | None = None, resume_from: str | os.PathLike | None = None,
                 cache_dir: str | None = None, peft_config: Any = None, **trl: Any):
        from accelerate.utils import set_seed

        from tsallis.llm.evaluate import default_evaluate_fn

        given = trainer_inputs(config, train_examples, eval_examples, trl)
        given = given.with_config(with_launcher_fsdp(given.config))  # accelerate launch --use_fsdp: our FSDP2
        data = trainer_data(given.config, given.train, given.eval)  # rows from Python: task "dataset"
        self.given = given.with_config(data.config)
        self.cfg = cfg = data.config
        self.train_examples, self.eval_examples = data.train, data.evals
        ESTIMATORS[cfg.method].check_examples(self.train_examples)
        self.reward_funcs = resolve_reward_funcs(reward_funcs, cfg, self.train_examples + self.eval_examples)
        self.lora = peft_config if peft_config is not None else lora_config(cfg)
        with accelerate_fsdp_hidden():  # FSDP is ours (cfg.fsdp): accelerate's plugin and rank-0 loading stay out
            self.accelerator = make_accelerator(cfg)
            for f in self.reward_funcs:  # a reward model: loaded once, onto the policy's device
                if isinstance(f, RewardModel):
                    f.to(self.accelerator.device)
            set_seed(cfg.seed, device_specific=True)
            self.output_dir = Path(cfg.output_dir)
            self.run = RunFolder(self.output_dir, self.accelerator, rows=data)
            self.cache_dir = cache_dir
            self.resume_path, self.resume_changes = self.run.open(resume_from, cfg, log)
            try:
                self._build(cache_dir)
            finally:  # taken again (and the folder checked again) by train()
                self.run.release()
        if evaluate_fn is None and self.eval_examples:
            evaluate_fn = default_evaluate_fn(cfg, self.eval_examples)
        self.evaluate_fn = evaluate_fn
        self.history: list[dict[str, Any]] = []

    def _build(self, cache_dir: str | None) -> None:
        """Model, tokenizer, policy, method, reference, optimizer, schedule and loop state (restored on resume)."""
        cfg, acc = self.cfg, self.accelerator
        on_cuda = acc.device.type == "cuda"
        model, self.tokenizer, base = load_policy(cfg, self.resume_path, cache_dir=cache_dir, on_cuda=on_cuda,
                                                  lora=self.lora, given=self.given)
        self.fsdp = cfg.fsdp
        self.policy = Policy.build(
            model, self.tokenizer, delimiter=cfg.resolved_delimiter, max_rationale_tokens=cfg.max_rationale_tokens,
            max_answer_tokens=cfg.max_answer_tokens, free_form=cfg.free_form, temperature=cfg.temperature,
            top_p=cfg.top_p, answer_eos=cfg.answer_eos, chat_template=cfg.chat_template, inference_mode=not self.fsdp,
            synced_gpus=self.fsdp and acc.num_processes > 1, autocast=acc.autocast)
        self.method = ESTIMATORS[cfg.method].from_config(cfg, delimiter_len=len(self.policy.delimiter_ids),
                                                         process_index=acc.process_index)
        check_prompts(self.train_examples + self.eval_examples, self.policy, self.method,
                      getattr(model.config, "max_position_embeddings", None))
        # the KL reference: the adapter-disabled model with LoRA (as TRL), else a frozen full copy
        self.ref_model = (load_reference(base, cfg, acc.device, on_cuda=on_cuda)
                          if self.method.needs_reference and self.lora is None else None)
        self.model, self.optimizer, self.scheduler = place(model, cfg, acc)
        self.policy.model = self.unwrapped
        self.guard = UpdateGuard(acc, self.model, self.optimizer, fsdp=self.fsdp, max_grad_norm=cfg.max_grad_norm,
                                 max_param_growth=cfg.max_param_growth, learning_rate=cfg.learning_rate)
        self.schedule = QSchedule(cfg.q_schedule, q_start=cfg.q, q_end=cfg.q_end, switch_at=cfg.q_switch_at,
                                  switch_p=cfg.q_switch_p)
        self.state = LoopState()
        self._param_norm: float | None = None
        if self.resume_path is not None:
            self.state = LoopState.from_dict(self.run.restore(self, self.resume_path, self.resume_changes))

    def _resume(self, target: str | os.PathLike) -> None:
        """Continue from checkpoint `target` as `Trainer(resume_from=target)` would: the same checks of the folder
        and the config, then the parts built again from the checkpoint (a model given to the constructor is
        replaced by the checkpoint's weights, or with LoRA by its base directory plus the checkpoint's adapter)."""
        path, changes = self.run.open(target, self.cfg, log)
        try:
            self.model = self.optimizer = self.ref_model = self.policy = None  # freed before the checkpoint loads
            self.given = replace(self.given, model=None)
            self.resume_path, self.resume_changes, self.history = path, changes, []
            self._build(self.cache_dir)
        finally:
            self.run.release()

    # ---------------------------------------------------------------------------------------------- loop

    def train(self, *, callbacks: Sequence[Callback] = (), stop: Stop | None = None,
              resume_from_checkpoint: bool | str | os.PathLike | None = None) -> TrainResult:
        """Run steps until `max_steps`, or until `stop(trainer, metrics)` returns True; returns the history.

        `resume_from_checkpoint` (transformers'): True continues from the latest checkpoint in output_dir, a path
        from that checkpoint, exactly as `resume_from=` (`--resume`) does (`_resume`).

        After each step: the evaluation hook (every `eval_every` steps), then the constructor's and these callbacks
        (`trl_compat.CallbackRunner`: `callback(trainer, metrics)` may add keys to `metrics`, which are logged; a
        `transformers.TrainerCallback` gets TRL's events), then metrics.jsonl and the trackers, the progress bar and
        the checkpoint schedule; a final checkpoint and `save_model()` at the end. Raises NonFiniteError on NaN/inf
        (no update made; the error is logged with the last good checkpoint).
        """
        from tqdm.auto import tqdm

        target = resume_target(resume_from_checkpoint, self.output_dir)
        if target is not None:
            self._resume(target)
        cfg = self.cfg
        try:  # another run may have started in the folder since __init__
            self.run.start(resume_path=self.resume_path, overwrite=cfg.overwrite_output_dir,
                           fresh=self.state.step == 0)
            run_log = RunLog(self.accelerator, self.output_dir, config=cfg.to_dict(), resume_step=self.state.step,
                             trackers=cfg.trackers)
            fixed_q = "q" in self.method.reads and cfg.q_schedule == "constant"  # else q shows in the postfix
            desc = f"{cfg.method} q={cfg.q:g}" if fixed_q else cfg.method
            bar = tqdm(total=cfg.max_steps, initial=self.state.step, desc=desc,
                       dynamic_ncols=True, disable=not (cfg.progress_bar and self.accelerator.is_main_process))
            # SIGTERM/SIGINT (preemption): the step in flight finishes, the checkpoint is saved, Preempted is raised
            events = CallbackRunner(self, [*self.given.callbacks, *callbacks], stop)
            with preempt.on_signals() as signals, run_log, bar, events:
                stop = signals.stop_after(events.stop)
                while self.state.step < cfg.max_steps:
                    m = self._guarded_step(run_log)
                    if cfg.eval_every and self.evaluate_fn and self.state.step % cfg.eval_every == 0:
                        m.update(self.evaluate())
                    events(self, m)
                    run_log.write(m)
                    self.history.append(m)
                    bar.set_postfix({k: f"{m[k]:.3g}" for k in ("reward", "log_p_hat/mean", "weights/ess", "q",
                                                               "grad_norm", "eval/accuracy") if k in m}, refresh=False)
                    bar.update(1)
                    scheduled = cfg.save_every and self.state.step % cfg.save_every == 0
                    if (scheduled or events.should_save()) and self.state.step < cfg.max_steps:
                        self.save()
                    if stop is not None and stop(self, m):
                        break
                self.save()
            signals.raise_if_stopped(self)
            self.save_model()  # the final model and tokenizer at the run root, for from_pretrained (as TRL's)
            st = self.state
            return TrainResult(self.history, st.step, st.last_checkpoint, st.best_checkpoint)
        finally:
            self.run.release()

    def step(self) -> dict[str, Any]:
        """One optimizer step; advances `state` and returns the step's metrics (docs/llm.md, "Metrics")."""
        cfg, acc, method, policy, st = self.cfg, self.accelerator, self.method, self.policy, self.state
        check_precision(acc, cfg)
        t0 = time.perf_counter()
        n = st.step + 1  # this step's number as logged (steps count from 1; the schedule's convention too)
        switched = st.switched or (self.schedule.kind == "step" and self.schedule.should_switch(n, st.running_success))
        q = float(self.schedule.at_step(n, max(cfg.max_steps, n), p=st.running_success, switched=switched))
        examples, seeds, epoch, pos = next_prompts(  # 1. this process's prompts and their sampling seeds
            self.train_examples, seed=cfg.seed, step=st.step, epoch=st.epoch, pos=st.pos,
            count=cfg.prompts_per_step, num_processes=acc.num_processes, process_index=acc.process_index)
        micro = []
        for exs, sds in split(examples, seeds, cfg.gradient_accumulation_steps):
            ro = method.rollout(policy, exs, sds, sample_answers=cfg.sample_answers)  # 2. M completions, or gold
            rewards, by_func = score_rewards(  # 3. rewards
                self.reward_funcs, cfg.reward_weights, exs, ro, policy.delimiter_ids, delimiter=cfg.resolved_delimiter,
                trainer_state=st, required=method.answers == "sampled")
            micro.append(MicroBatch(exs, sds, ro, rewards, by_func, policy.batch(exs, ro, method.answers)))
        batch = StepBatch(q, micro)
        extras = method.prepare(batch.rewards, batch.scored, self._mean_over_processes)  # GRPO: advantages
        t_rollout = time.perf_counter() - t0
        if not self.model.training:  # once: each .train() re-runs transformers' kernel setup
            self.model.train()
        losses, stats, entropy = [], [], []
        for i, (mb, extra) in enumerate(zip(micro, extras)):
            with acc.no_sync(self.model) if i < len(micro) - 1 else contextlib.nullcontext():
                scored, ent = self.forward(mb.scored, extra)
                out = method.loss(scored, q=q)  # 4. the method's loss
                loss = out.loss / len(micro)  # gradient accumulation: the one place it is scaled
                if not bool(torch.isfinite(loss.detach())):
                    raise NonFiniteError(f"the loss is {float(loss)}")
                acc.backward(loss)  # 5. backward
            losses, stats, entropy = losses + [float(loss.detach())], stats + [out.stats], entropy + [ent]
        grad_norm = self.guard.clip()  # 6. clip (and the NaN/inf guard)
        before = self._param_norm if self._param_norm is not None else self.param_norm()
        self.optimizer.step()  # 7. update (then the divergence guard)
        self._param_norm = self.guard.check_update(before)
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        m, tokens = step_metrics(  # 8. metrics, and the new loop state
            batch, losses=losses, stats=stats, entropy=entropy, gather=self._gather, delimiter=cfg.resolved_delimiter,
            stop_ids=policy.stop_ids, delimiter_len=len(policy.delimiter_ids), sampled=method.rationales == "sampled")
        self.state = st.after_step(epoch=epoch, pos=pos, switched=switched, ema=cfg.success_ema,
                                   success=m.get(method.success_metric, 0.0), tokens=tokens)
        t = time.perf_counter() - t0
        m.update({"step": self.state.step, "q": q, "grad_norm": grad_norm, "param_norm": self._param_norm,
                  "learning_rate": self.scheduler.get_last_lr()[0], "running_success": self.state.running_success,
                  "num_tokens": self.state.num_tokens, "epoch": epoch + pos / len(self.train_examples), "step_time": t,
                  "time/rollout": t_rollout, "time/update": t - t_rollout, "tokens_per_s": m["step_tokens"] / t})
        return m

    # ------------------------------------------------------------------------------------ parts of a step

    @property
    def unwrapped(self):
        """The model without its DDP wrapper (an FSDP2 model is its own module)."""
        return self.accelerator.unwrap_model(self.model)

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
        model = self.ref_model if self.ref_model is not None else self.unwrapped
        ctx = contextlib.nullcontext() if self.ref_model is not None else model.disable_adapter()
        with ctx, self.accelerator.autocast():
            return token_logps(model, batch)[0]

    def param_norm(self) -> float:
        """The norm of the trainable parameters (all processes' shards)."""
        return self.guard.norms()[0]

    def _mean_over_processes(self, value: float) -> float:
        return float(self._gather(torch.tensor([value])).mean())

    def _gather(self, t: torch.Tensor) -> torch.Tensor:
        return self.accelerator.gather(t.to(self.accelerator.device)).cpu()

    # ------------------------------------------------------------------------ evaluation, checkpoints

    def evaluate(self) -> dict[str, float]:
        """The evaluation hook's metrics now (TRL's name); a new best `eval_metric` saves output_dir/best."""
        if self.evaluate_fn is None:
            raise InputError("Trainer.evaluate(): this run has no evaluation: pass eval_dataset= (or evaluate_fn=)")
        res = self.evaluate_fn(self)
        val = res.get(self.cfg.resolved_eval_metric)
        res, val = self.run.share([res, val])  # every rank evaluates; all follow the main process's value
        if val is not None and (self.state.best_metric is None or val > self.state.best_metric):
            self.state = replace(self.state, best_metric=float(val), best_checkpoint=str(self.output_dir / "best"))
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

    def save_model(self, path: str | os.PathLike | None = None) -> Path:
        """TRL's name: the model and tokenizer for `from_pretrained` into `path` (default: output_dir), atomically."""
        return self.run.save_model(self, path)

    def save(self, path: Path | None = None, *, prune: bool = True) -> Path:
        """Atomic checkpoint of the training state (`RunFolder.save`); under checkpoints/ it becomes `latest`."""
        path = self.run.save(self, path, prune=prune)
        if path.parent.name == "checkpoints":
            self.state = replace(self.state, last_checkpoint=str(path))
        return path
