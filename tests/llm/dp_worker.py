"""Worker of tests/llm/test_scale.py::test_two_process_data_parallel_matches_one_process (not a test module).

Run as `accelerate launch --cpu --num_processes N tests/llm/dp_worker.py MODEL OUT` (or plain python for one
process): trains GARL for 2 steps on 4 toy prompts per step and saves, per rank, the rollouts it generated and,
on rank 0, the (all-reduced) gradient at each optimizer step, the logged metrics and the final parameters.
"""

import sys

import torch

from tsallis.llm.config import TrainConfig
from tsallis.llm.trainer import Trainer


def main(model: str, out: str) -> None:
    torch.set_num_threads(1)
    cfg = TrainConfig(model=model, output_dir=out, method="garl", q=0.5, max_steps=2, num_generations=3,
                      prompts_per_step=4, toy_n_steps=1, toy_width=3, toy_n_train=8, toy_n_eval=4,
                      max_rationale_tokens=6, max_answer_tokens=3, learning_rate=1e-3, max_grad_norm=1e9,
                      progress_bar=False, save_every=0)
    tr = Trainer(cfg)
    rollouts, grads = [], []
    real_rollout, real_step = tr.rollout, tr.optimizer.step

    def rollout(examples, **kw):
        ro = real_rollout(examples, **kw)
        rollouts.append({"ids": [ex.id for ex in examples], "rationales": ro.rationale_ids, "answers": ro.answer_ids})
        return ro

    def step(*a, **k):
        grads.append(torch.cat([p.grad.detach().reshape(-1).clone() for p in tr.unwrapped.parameters()]))
        return real_step(*a, **k)

    tr.rollout, tr.optimizer.step = rollout, step
    res = tr.train()
    acc = tr.accelerator
    params = torch.cat([p.detach().reshape(-1) for p in tr.unwrapped.parameters()])
    torch.save({"rollouts": rollouts, "grads": grads, "params": params, "history": res.history,
                "num_processes": acc.num_processes}, f"{out}/rank{acc.process_index}.pt")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
