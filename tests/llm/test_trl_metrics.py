"""TRL's GRPO metric set with TRL's meanings (issue 20): completion lengths and the clipped (truncated) ratio, the
clip-ratio extremes, epoch; tensorboard tags under train/ and eval/ in one run folder."""

from __future__ import annotations

import types

import pytest
import torch

from tests.llm.helpers import tiny_config
from tsallis.llm.estimators import grpo_loss
from tsallis.llm.rollout import Rollout
from tsallis.llm.step import MicroBatch, StepBatch, completion_metrics, step_metrics
from tsallis.llm.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

STOP = 0


def _batch(rationales, forced, answers) -> StepBatch:
    ro = Rollout([[9]], rationales, forced, answers, num_generated_tokens=7)
    scored = types.SimpleNamespace(attention_mask=torch.ones(len(rationales), 3))
    return StepBatch(1.0, [MicroBatch([], [], ro, None, {}, scored)])


def test_clipped_ratio_is_trls_truncated_completions_and_the_forced_rate_is_its_own():
    """Rows (rationale, forced delimiter, answer; stop id 0, a 1-token delimiter): the clipped completions are
    those whose answer hit the limit without a stop token (rows 2 and 4), whatever their delimiter; the forced
    delimiters (rows 2-4, one of which then ended with a stop token) are counted apart."""
    b = _batch([[1, 2], [1, 2, 3], [1], [1, 1, 1]], [False, True, True, True], [[3, STOP], [3, 4], [5, STOP], [4, 4]])
    m = completion_metrics(b, gather=lambda t: t, stop_ids=[STOP], delimiter_len=1)
    assert m["completions/clipped_ratio"] == 0.5 and m["rationale/forced_ratio"] == 0.75
    assert (m["completions/mean_length"], m["completions/min_length"], m["completions/max_length"]) == (5.25, 4, 6)
    assert (m["completions/mean_terminated_length"], m["completions/min_terminated_length"],
            m["completions/max_terminated_length"]) == (4.5, 4, 5)
    assert m["rationale/mean_length"] == 2.25


def test_without_sampled_answers_a_completion_ends_at_its_sampled_delimiter():
    m = completion_metrics(_batch([[1, 2], [1, 2, 3, 4]], [False, True], None), gather=lambda t: t, stop_ids=[STOP],
                           delimiter_len=2)
    assert m["completions/clipped_ratio"] == 0.5 and m["completions/mean_terminated_length"] == 4
    m = completion_metrics(_batch([[1], [2]], [True, True], [[3], [4]]), gather=lambda t: t, stop_ids=[STOP],
                           delimiter_len=1)
    assert m["completions/clipped_ratio"] == 1.0  # none terminated: TRL logs 0 for the terminated lengths
    assert (m["completions/mean_terminated_length"], m["completions/max_terminated_length"]) == (0.0, 0.0)


def test_clip_ratio_extremes_are_over_sequences_as_trl():
    """low_min / high_max: the smallest / largest per-sequence fraction of clipped tokens, against a loop over the
    sequences; a sequence with no scored token is left out."""
    g = torch.Generator().manual_seed(0)
    N, T = 6, 5
    logps = -torch.rand(N, T, generator=g, dtype=torch.float64)
    old = logps + 0.6 * torch.randn(N, T, generator=g, dtype=torch.float64)
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0, 0.5, -0.5], dtype=torch.float64)
    mask = (torch.rand(N, T, generator=g) > 0.3).double()
    mask[5] = 0
    out = grpo_loss(logps, old, adv, mask, epsilon_low=0.2, epsilon_high=0.2)
    ratio = (logps - old).exp()
    lows, highs = [], []
    for i in range(N - 1):
        tokens = [t for t in range(T) if mask[i, t] > 0]
        lows.append(sum(bool(ratio[i, t] < 0.8 and adv[i] < 0) for t in tokens) / len(tokens))
        highs.append(sum(bool(ratio[i, t] > 1.2 and adv[i] > 0) for t in tokens) / len(tokens))
    assert out.stats["clip_ratio/low_min"] == pytest.approx(min(lows), abs=1e-12)
    assert out.stats["clip_ratio/high_max"] == pytest.approx(max(highs), abs=1e-12)
    assert max(highs) > 0 and max(lows) > min(lows)  # the data can tell a min from a mean


def test_step_metrics_reduce_the_extremes_by_min_and_max_over_micro_batches():
    b = _batch([[1]], [False], None)
    b = StepBatch(1.0, b.micro * 2)
    stats = [{"clip_ratio/low_min": 0.2, "clip_ratio/high_max": 0.1, "kl": 1.0},
             {"clip_ratio/low_min": 0.1, "clip_ratio/high_max": 0.3, "kl": 3.0}]
    m, _ = step_metrics(b, losses=[0.0, 0.0], stats=stats, entropy=[0.0, 0.0], gather=lambda t: t, delimiter=">",
                        stop_ids=[STOP], delimiter_len=1, sampled=False)
    assert (m["clip_ratio/low_min"], m["clip_ratio/high_max"], m["kl"]) == (0.1, 0.3, 2.0)


def test_step_metrics_are_over_the_micro_batches_of_all_processes_as_trl():
    """This process's two micro-batches and another process's two (a gather that appends the other's rows, in
    the order of the stats, then the entropy): the means (clip_ratio/*_mean, kl, entropy) are over all four, as
    TRL's mean of the gathered values, and the extremes the min / max over all four; the other process's numbers
    are chosen so that a per-process value differs from the global one in every stat."""
    b = _batch([[1]], [False], None)
    b = StepBatch(1.0, b.micro * 2)
    stats = [{"clip_ratio/low_mean": 0.1, "clip_ratio/low_min": 0.2, "clip_ratio/high_max": 0.1, "kl": 1.0},
             {"clip_ratio/low_mean": 0.3, "clip_ratio/low_min": 0.1, "clip_ratio/high_max": 0.3, "kl": 3.0}]
    other = torch.tensor([[0.5, 0.05, 0.4, 5.0, 2.0], [0.7, 0.3, 0.2, 7.0, 4.0]], dtype=torch.float64)
    gathered = []

    def gather(t):  # two processes: this one's tensor, then the other's
        gathered.append(t)
        return torch.cat([t, other]) if t.ndim == 2 else torch.cat([t, t])

    m, _ = step_metrics(b, losses=[0.0, 0.0], stats=stats, entropy=[1.0, 3.0], gather=gather, delimiter=">",
                        stop_ids=[STOP], delimiter_len=1, sampled=False)
    assert (m["clip_ratio/low_mean"], m["kl"], m["entropy"]) == pytest.approx((0.4, 4.0, 2.5), abs=1e-12)
    assert (m["clip_ratio/low_min"], m["clip_ratio/high_max"]) == (0.05, 0.4)
    assert gathered[0].shape == (2, 5)  # one gather for all the stats


TRL_NAMES = ("reward", "reward_std", "frac_reward_zero_std", "entropy", "loss", "grad_norm", "learning_rate",
             "num_tokens", "epoch", "completions/mean_length", "completions/min_length", "completions/max_length",
             "completions/clipped_ratio", "completions/mean_terminated_length", "completions/min_terminated_length",
             "completions/max_terminated_length", "clip_ratio/low_mean", "clip_ratio/high_mean",
             "clip_ratio/region_mean", "clip_ratio/low_min", "clip_ratio/high_max")
"""GRPOTrainer's logged names (TRL 1.16, grpo_trainer.py: `_metrics[mode][...]` and the Trainer's epoch)."""


def test_a_grpo_run_logs_trls_names_and_tensorboard_gets_one_run_with_train_and_eval_tags(model_path, tmp_path):
    """8 training prompts, 2 per step: the epoch is 1/4 per step. The tensorboard events are in one folder,
    logs/tsallis/ (accelerate's own hyperparameter writing made two more, one without scalars), with the
    training metrics under train/ and the evaluation's under eval/."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    res = Trainer(tiny_config(model_path, tmp_path, method="grpo", max_steps=4, save_every=0, eval_every=2,
                              report_to="tensorboard")).train()
    assert all(k in m for m in res.history for k in TRL_NAMES)
    assert [m["epoch"] for m in res.history] == [0.25, 0.5, 0.75, 1.0]
    events = list((tmp_path / "logs").rglob("events.out.tfevents.*"))
    assert len({e.parent for e in events}) == 1 and events[0].parent == tmp_path / "logs" / "tsallis"
    assert [p for p in (tmp_path / "logs" / "tsallis").iterdir() if p.is_dir()] == []
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/reward", "train/completions/clipped_ratio", "train/epoch", "eval/accuracy"} <= tags
    assert all(t.startswith(("train/", "eval/")) for t in tags)
    assert [e.step for e in acc.Scalars("eval/accuracy")] == [2, 4]
