"""Worker of tests/llm/test_scale.py's multi-process tests (not a test module).

Run as `torchrun --nproc_per_node N tests/llm/dp_worker.py MODEL OUT [ddp|fsdp|lora]` (or plain python for one
process): trains GARL for 2 steps on 4 toy prompts per step and saves, per rank, the rollouts it generated and,
on rank 0, the (all-reduced, full) gradient at each optimizer step, the logged metrics and the final parameters.
With `fsdp` the model is sharded (FSDP2) and checkpointed at step 1 (sharded); a second Trainer then resumes from
that checkpoint and trains step 2 again, and its final parameters are saved too. `lora` trains a LoRA adapter,
sharded as `fsdp` when accelerate's launcher asks for FSDP (ACCELERATE_USE_FSDP=true in the environment), and
saves the parameters before training too.
With `paft`: PAFT (q = 0.75) for 4 steps uninterrupted in OUT/full; the same run in OUT/part crashes during step
3 after its checkpoint of step 2, and a new Trainer resumes it from that checkpoint to step 4; both runs'
parameters and histories are saved.
"""

import dataclasses
import sys

import torch

from tsallis.llm.checkpoint import full_state_dict
from tsallis.llm.config import TrainConfig
from tsallis.llm.trainer import Trainer


def _config(model: str, out: str, fsdp: bool, lora: bool = False) -> TrainConfig:
    return TrainConfig(model=model, output_dir=out, method="garl", q=0.5, max_steps=2, num_generations=3,
                       prompts_per_step=4, toy_n_steps=1, toy_width=3, toy_n_train=8, toy_n_eval=4,
                       max_rationale_tokens=6, max_answer_tokens=3, learning_rate=1e-3, max_grad_norm=1e9,
                       progress_bar=False, save_every=1 if fsdp or lora else 0, fsdp=fsdp,
                       lora_r=4 if lora else 0, lora_target_modules="c_attn" if lora else None)


def _full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def _params(tr: Trainer) -> dict[str, torch.Tensor]:
    """Full parameters by name (gathered from the shards under FSDP: a collective)."""
    if tr.fsdp:
        full = full_state_dict(tr.model)
        return {n: full[n].clone() for n, _ in tr.model.named_parameters()} if tr.accelerator.is_main_process else {}
    return {n: p.detach().clone() for n, p in tr.unwrapped.named_parameters()}


class Crash(RuntimeError):
    pass


def paft_kill_and_resume(model: str, out: str) -> None:
    def cfg(run: str) -> TrainConfig:
        return dataclasses.replace(_config(model, f"{out}/{run}", False), method="paft", q=0.75, paft_k=3,
                                   max_steps=4, save_every=2)

    full = Trainer(cfg("full"))
    history = full.train().history

    def crash(trainer, metrics):
        if metrics["step"] == 3:
            raise Crash("killed during step 3")

    part = Trainer(cfg("part"))
    try:
        part.train(callbacks=[crash])
    except Crash:
        pass
    resumed = Trainer(cfg("part"), resume_from=f"{out}/part/checkpoints/checkpoint-2")
    resumed_history = resumed.train().history
    record = {"full_params": _params(full), "full_history": history, "resumed_params": _params(resumed),
              "resumed_history": resumed_history, "generator": resumed.method.generator.get_state()}
    torch.save(record, f"{out}/rank{full.accelerator.process_index}.pt")


def main(model: str, out: str, mode: str = "ddp") -> None:
    torch.set_num_threads(1)
    if mode == "paft":
        return paft_kill_and_resume(model, out)
    fsdp, lora = mode == "fsdp", mode == "lora"
    tr = Trainer(_config(model, out, fsdp, lora))
    initial = _params(tr) if lora else None
    rollouts, grads = [], []
    real_rollout, real_step = tr.policy.sample, tr.optimizer.step

    def rollout(examples, *a, **kw):
        ro = real_rollout(examples, *a, **kw)
        rollouts.append({"ids": [ex.id for ex in examples], "rationales": ro.rationale_ids, "answers": ro.answer_ids})
        return ro

    def step(*a, **k):
        grads.append(torch.cat([_full(p.grad).detach().reshape(-1).clone() for p in tr.model.parameters()
                               if p.requires_grad]))
        return real_step(*a, **k)

    tr.policy.sample, tr.optimizer.step = rollout, step
    res = tr.train()
    acc = tr.accelerator
    record = {"rollouts": rollouts, "grads": grads, "params": _params(tr), "history": res.history,
              "num_processes": acc.num_processes, "param_type": type(next(tr.model.parameters())).__name__,
              "initial_params": initial}
    if tr.fsdp:  # resume the sharded checkpoint of step 1 and redo step 2
        resumed = Trainer(_config(model, out, fsdp, lora), resume_from=f"{out}/checkpoints/checkpoint-1")
        record["resumed_history"] = resumed.train().history
        record["resumed_params"] = _params(resumed)
    torch.save(record, f"{out}/rank{acc.process_index}.pt")


if __name__ == "__main__":
    main(*sys.argv[1:])
