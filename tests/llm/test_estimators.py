"""The surrogate losses' autograd gradients equal the paper's estimators assembled by hand on a tiny model.

The tiny model runs in float64, and the hand assembly uses per-sample gradients and weights written from the
paper's formulas (Eqs. 9, 12, 14; Algorithms 1-2) without tsallis.core, so the tolerance is float64 round-off
(rtol 1e-9 over sums of ~1e4 products).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tsallis.core import garl_weights, paft_weights
from tsallis.llm import estimators
from tsallis.llm.rollout import build_scored_batch, token_logps
from tsallis.llm.toy import build_tokenizer, tiny_random_model

B, M = 2, 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    path = tiny_random_model(tmp_path_factory.mktemp("tiny"), n_embd=16)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).double()
    tok = build_tokenizer()
    rng = np.random.default_rng(0)
    digits = [tok.convert_tokens_to_ids(c) for c in "0123456789"]
    prompts = [tok("R12;a3:")["input_ids"], tok("R4;a1a2:")["input_ids"]]
    rows = [prompts[b] for b in range(B) for _ in range(M)]
    rationales = [list(rng.choice(digits, size=rng.integers(1, 5))) for _ in range(B * M)]
    forced = [bool(i % 3 == 0) for i in range(B * M)]
    answers = [tok("12")["input_ids"] + [tok.eos_token_id]] * M + [tok("7")["input_ids"] + [tok.eos_token_id]] * M
    batch = build_scored_batch(rows, rationales, forced, tok(">")["input_ids"], answers, tok.pad_token_id)
    return model, batch


def _seq_logps(model, batch):
    logps, _ = token_logps(model, batch)
    return (logps * batch.rationale_mask).sum(-1).view(B, M), (logps * batch.answer_mask).sum(-1).view(B, M)


def _flat_grad(model, scalar, retain=True):
    params = [p for p in model.parameters()]
    grads = torch.autograd.grad(scalar, params, retain_graph=retain, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


def _per_sample_grads(model, batch):
    lp_rat, lp_ans = _seq_logps(model, batch)
    gz = torch.stack([_flat_grad(model, lp_rat[b, m]) for b in range(B) for m in range(M)]).view(B, M, -1)
    gy = torch.stack([_flat_grad(model, lp_ans[b, m]) for b in range(B) for m in range(M)]).view(B, M, -1)
    return lp_rat.detach().numpy(), lp_ans.detach().numpy(), gz, gy


def _close(got, expected):
    """float64 round-off: relative 1e-9 of the gradient's scale (entries near zero cancel)."""
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9 * float(expected.abs().max()))


def _autograd(model, batch, loss_fn):
    lp_rat, lp_ans = _seq_logps(model, batch)
    return _flat_grad(model, loss_fn(lp_rat, lp_ans).loss, retain=False)


def _garl_hand(log_w, q, rloo, normalize, pathwise=True):
    """Paper Eq. 12 (rloo) / Eq. 9 (plug-in) coefficients, straight from the formulas in float64."""
    w = np.exp(log_w)
    wbar = w.mean(-1, keepdims=True)
    amp = w / wbar ** q
    if rloo:
        wloo = (w.sum(-1, keepdims=True) - w) / (M - 1)
        score = (amp - wloo ** (1 - q)) / M
    else:
        score = amp / M
    path = amp / M if pathwise else np.zeros_like(amp)
    scale = M ** (-q) if normalize else 1.0
    return score * scale, path * scale


def _assemble(score, path, gz, gy):
    s, p = torch.as_tensor(score), torch.as_tensor(path)
    return -((s.unsqueeze(-1) * gz).sum(1) + (p.unsqueeze(-1) * gy).sum(1)).mean(0)


@pytest.mark.parametrize("q", [0.0, 0.5, 0.75, 1.0])
@pytest.mark.parametrize("baseline", ["none", "rloo"])
@pytest.mark.parametrize("pathwise", [True, False])
def test_garl_autograd_equals_hand_estimator(setup, q, baseline, pathwise):
    model, batch = setup
    lp_rat, log_w, gz, gy = _per_sample_grads(model, batch)
    score, path = _garl_hand(log_w, q, baseline == "rloo", normalize=True, pathwise=pathwise)
    expected = _assemble(score, path, gz, gy)
    got = _autograd(model, batch, lambda r, a: estimators.garl_loss(r, a, q=q, baseline=baseline, pathwise=pathwise))
    _close(got, expected)


@pytest.mark.parametrize("q", [0.0, 0.5, 1.0])
def test_paft_autograd_equals_hand_estimator(setup, q):
    """Eq. 14 / Algorithm 2: -(w_bar^(1-q) / (M^q K)) sum_k grad log p(z_{r_k}, y*|x), same resampling draws."""
    model, batch = setup
    K = 5
    _, log_w, gz, gy = _per_sample_grads(model, batch)
    w = np.exp(log_w)
    g = torch.Generator().manual_seed(3)
    idx = torch.multinomial(torch.as_tensor(w / w.sum(-1, keepdims=True)), K, replacement=True, generator=g)
    expected = torch.zeros_like(gz[0, 0])
    for b in range(B):
        scale = w[b].mean() ** (1 - q) / (M ** q * K)
        expected -= scale * sum(gz[b, r] + gy[b, r] for r in idx[b].tolist()) / B
    got = _autograd(model, batch, lambda r, a: estimators.paft_loss(
        r, a, q=q, K=K, generator=torch.Generator().manual_seed(3)))
    _close(got, expected)


def test_sft_autograd_is_mean_nll(setup):
    model, batch = setup
    _, _, gz, gy = _per_sample_grads(model, batch)
    expected = -(gz + gy).reshape(B * M, -1).mean(0)
    _close(_autograd(model, batch, lambda r, a: estimators.sft_loss(r, a)), expected)


# ------------------------------------------------------------------------------ reductions (paper Prop. D.2)


def test_garl_q0_is_rao_blackwellized_reinforce(setup):
    """q=0, no baseline: -(1/M) sum_m w_m grad log p(z_m, y*|x)."""
    model, batch = setup
    _, log_w, gz, gy = _per_sample_grads(model, batch)
    w = torch.as_tensor(np.exp(log_w)).unsqueeze(-1)
    expected = -(w * (gz + gy)).sum(1).mean(0) / M
    got = _autograd(model, batch, lambda r, a: estimators.garl_loss(r, a, q=0.0, baseline="none"))
    _close(got, expected)


def test_garl_q1_is_iwae(setup):
    """q=1, no baseline, no M^-q: the self-normalized (IWAE) gradient -sum_m (w_m / sum w) grad log p(z_m, y*|x)."""
    model, batch = setup
    _, log_w, gz, gy = _per_sample_grads(model, batch)
    w = np.exp(log_w)
    sn = torch.as_tensor(w / w.sum(-1, keepdims=True)).unsqueeze(-1)
    expected = -(sn * (gz + gy)).sum(1).mean(0)
    got = _autograd(model, batch, lambda r, a: estimators.garl_loss(r, a, q=1.0, baseline="none", normalize=False))
    _close(got, expected)


def test_garl_q1_rloo_score_coefficients_sum_to_zero():
    """q=1 with RLOO: c_m = w_m / w_bar - 1 sums to zero over m (paper Sec. 4.1)."""
    log_w = torch.tensor([[-3.0, -1.0, -7.0, -2.0]], dtype=torch.float64)
    score, _ = garl_weights(log_w, 1.0, baseline="rloo")
    assert abs(float(score.sum())) < 1e-15


def test_paft_q1_is_em():
    """q=1, no M^-q: coef_m = n_m / K, uniform SFT on the resampled rationales (EM E-step / TRICE)."""
    log_w = torch.tensor([[-30.0, -31.0, -29.5]], dtype=torch.float64)
    coef = paft_weights(log_w, 1.0, 7, torch.Generator().manual_seed(0))
    counts = coef * 7
    assert torch.allclose(counts, counts.round()) and int(counts.sum().round()) == 7


def test_paft_expectation_equals_garl_plug_in():
    """E[PAFT coef | pool] = w_m / (M w_bar^q) = GARL's plug-in coefficient (paper Prop. D.3); |mean-truth|<=4 SE."""
    log_w = torch.tensor([[-2.0, -0.5, -4.0, -1.0], [-40.0, -41.0, -39.0, -45.0]], dtype=torch.float64)
    q, K, R = 0.5, 4, 20000
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([paft_weights(log_w, q, K, g) for _ in range(R)])  # (R, B, M)
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(R)
    _, truth = garl_weights(log_w, q, baseline="none")
    assert torch.all((mean - truth).abs() <= 4 * se + 1e-300)


def test_garl_cold_start_weights_stay_finite():
    """At log w ~ -1e3 (w underflows to 0 in float64) the coefficients and the loss stay finite."""
    lp_ans = torch.tensor([[-1000.0, -1001.0, -1005.0]], dtype=torch.float64, requires_grad=True)
    lp_rat = torch.zeros_like(lp_ans, requires_grad=True)
    out = estimators.garl_loss(lp_rat, lp_ans, q=1.0)
    out.loss.backward()
    assert torch.isfinite(lp_ans.grad).all() and torch.isfinite(out.loss)
    assert out.stats["log_p_hat/mean"] < -999


# ---------------------------------------------------------------------------------------------- GRPO (TRL)


def _trl_reference(logps, old, adv, mask, *, eps_low, eps_high, beta, ref, loss_type, max_len, num_items, gas):
    """TRL GRPOTrainer._compute_loss maths (research/llm-anchors.md Sec. 1.3), written row by row."""
    N, T = logps.shape
    per_token = torch.zeros_like(logps)
    for i in range(N):
        for t in range(T):
            ratio = torch.exp(logps[i, t] - old[i, t])
            clipped = ratio.clamp(1 - eps_low, 1 + eps_high)
            val = -torch.min(ratio * adv[i], clipped * adv[i])
            if beta:
                d = ref[i, t] - logps[i, t]
                val = val + beta * (torch.exp(d) - d - 1)
            per_token[i, t] = val
    if loss_type == "grpo":
        return sum((per_token[i] * mask[i]).sum() / mask[i].sum().clamp(min=1) for i in range(N)) / N / gas
    if loss_type == "bnpo":
        return (per_token * mask).sum() / mask.sum().clamp(min=1) / gas
    if loss_type == "dr_grpo":
        return (per_token * mask).sum() / (N * max_len) / gas
    return (per_token * mask).sum() / num_items


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_grpo_loss_matches_trl_maths(loss_type, beta):
    g = torch.Generator().manual_seed(1)
    N, T = 6, 5
    logps = (-torch.rand(N, T, generator=g, dtype=torch.float64) * 3).requires_grad_()
    old = logps.detach() + 0.3 * torch.randn(N, T, generator=g, dtype=torch.float64)  # ratios away from 1: clipping
    ref = logps.detach() + 0.2 * torch.randn(N, T, generator=g, dtype=torch.float64)
    adv = torch.randn(N, generator=g, dtype=torch.float64)
    mask = (torch.rand(N, T, generator=g) > 0.3).double()
    kw = dict(beta=beta, loss_type=loss_type)
    ours = estimators.grpo_loss(logps, old, adv, mask, epsilon_low=0.2, epsilon_high=0.28, ref_logps=ref,
                                max_completion_length=9, num_items_in_batch=17.0, grad_accum=2, **kw)
    (g_ours,) = torch.autograd.grad(ours.loss, logps)
    ref_loss = _trl_reference(logps, old, adv, mask, eps_low=0.2, eps_high=0.28, ref=ref, max_len=9,
                              num_items=17.0, gas=2, **kw)
    (g_ref,) = torch.autograd.grad(ref_loss, logps)
    torch.testing.assert_close(ours.loss, ref_loss, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-12, atol=1e-14)
    assert 0 < ours.stats["clip_ratio/region_mean"] < 1


def test_grpo_on_policy_gradient_is_advantage_weighted_score():
    """With old = sg(current) (one iteration, TRL's default), grad = -A * mask / normalizer."""
    logps = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]], dtype=torch.float64, requires_grad=True)
    adv = torch.tensor([1.5, -0.5], dtype=torch.float64)
    mask = torch.ones(2, 2, dtype=torch.float64)
    out = estimators.grpo_loss(logps, logps.detach(), adv, mask, loss_type="bnpo")
    (g,) = torch.autograd.grad(out.loss, logps)
    torch.testing.assert_close(g, -adv.unsqueeze(-1).expand(2, 2) / 4)


@pytest.fixture(scope="module")
def trl_model_path(tmp_path_factory):
    """The model both sides share; skips (before building it) where the optional `trl` extra is not installed."""
    pytest.importorskip("trl", reason="the TRL parity tests need the trl extra: pip install -e '.[trl]'")
    pytest.importorskip("datasets")
    return tiny_random_model(tmp_path_factory.mktemp("trl-tiny"), n_embd=16)


def _trl_vs_ours(path, out_dir, *, loss_type, beta, use_bias_correction_kl=False, kl_ratio_correction=False):
    """Run TRL's GRPOTrainer._compute_loss and our grpo_loss on one identical batch; return both losses and grads.

    The batch is laid out by our `build_scored_batch` (equal-length prompts, so no left padding: TRL passes no
    position_ids and HF then numbers positions 0..L-1, as our cumsum does) and handed to TRL as prompt_ids/mask and
    completion_ids/mask (= our attention mask over the completion). Our loss mask (a forced delimiter is in context
    but not scored) reaches TRL as `tool_mask`, which TRL multiplies into completion_mask for the loss only.
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    tok = build_tokenizer()
    gas, max_len = 2, 12  # 2 micro-batches per generation batch: exercises TRL's grad-accum / num_items scaling
    args = GRPOConfig(output_dir=str(out_dir), report_to=[], use_cpu=True, bf16=False, save_strategy="no",
                      per_device_train_batch_size=8, num_generations=4, gradient_accumulation_steps=gas,
                      max_completion_length=max_len, loss_type=loss_type, beta=beta, epsilon=0.2, epsilon_high=0.28,
                      use_bias_correction_kl=use_bias_correction_kl)
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(path, local_files_only=True),
                          reward_funcs=lambda completions, **kw: [0.0] * len(completions), args=args,
                          train_dataset=Dataset.from_dict({"prompt": ["R123;a1b2:"] * 8}), processing_class=tok)
    assert trainer.args.steps_per_generation == gas and not trainer.args.bf16
    trainer.current_gradient_accumulation_steps = gas  # set by transformers' training loop, which we bypass
    model = trainer.model  # TRL's patched model (fused LM head); our token_logps uses its original forward
    model.train()

    rng = np.random.default_rng(0)
    N, P = 8, 6
    delim = tok.convert_tokens_to_ids([">"])
    prompts = [list(rng.integers(2, len(tok), P)) for _ in range(N // 4) for _ in range(4)]
    rationales = [list(rng.integers(2, len(tok), int(rng.integers(0, 7)))) for _ in range(N)]
    answers = [list(rng.integers(2, len(tok), int(rng.integers(0, 4)))) for _ in range(N)]
    forced = [bool(f) for f in rng.random(N) < 0.3]
    batch = build_scored_batch(prompts, rationales, forced, delim, answers, tok.pad_token_id)
    mask = (batch.rationale_mask | batch.answer_mask).float()
    assert batch.completion_length <= max_len and bool(batch.attention_mask[:, :P].all())

    logps, _ = token_logps(model, batch)
    g = torch.Generator().manual_seed(1)
    old = logps.detach() + 0.3 * torch.randn(logps.shape, generator=g)  # ratios away from 1: both clips active
    ref = logps.detach() + 0.2 * torch.randn(logps.shape, generator=g)
    adv = torch.randn(N, generator=g)
    num_items = float(mask.sum()) + 23.0  # active tokens of the whole accumulated batch (2 micro-batches)
    ours = estimators.grpo_loss(logps, old, adv, mask, epsilon_low=0.2, epsilon_high=0.28, beta=beta, ref_logps=ref,
                                loss_type=loss_type, max_completion_length=max_len, num_items_in_batch=num_items,
                                grad_accum=gas, kl_ratio_correction=kl_ratio_correction)
    params = [p for p in model.parameters() if p.requires_grad]
    g_ours = torch.autograd.grad(ours.loss, params)

    inputs = {"prompt_ids": batch.input_ids[:, :P], "prompt_mask": batch.attention_mask[:, :P],
              "completion_ids": batch.completion_ids, "completion_mask": batch.attention_mask[:, P:],
              "tool_mask": mask.long(), "advantages": adv, "old_per_token_logps": old,
              "num_items_in_batch": torch.tensor(num_items)}
    if beta:
        inputs["ref_per_token_logps"] = ref
    theirs = trainer._compute_loss(model, inputs)
    g_theirs = torch.autograd.grad(theirs, params)
    logged = {k: v[-1] for k, v in trainer._metrics["train"].items()}  # the clip metrics, TRL's names and meanings
    for key in ("low_mean", "high_mean", "region_mean", "low_min", "high_max"):
        assert ours.stats[f"clip_ratio/{key}"] == pytest.approx(logged[f"clip_ratio/{key}"], abs=1e-6), key
    return ours, theirs, g_ours, g_theirs


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_grpo_loss_against_trl_itself(trl_model_path, tmp_path, loss_type, beta):
    """Our grpo_loss equals TRL's GRPOTrainer._compute_loss, value and parameter gradients (verified: trl 1.16.0).

    Same float32 model, tokens, advantages, old/ref log-probs and num_items_in_batch, with 2 accumulation steps
    (steps_per_generation = 2, as TRL's default ties it to grad accum). Two TRL 1.x defaults are switched off because
    they are not GRPO's loss: `bf16=True` (TRL's fused LM head then runs under bf16 autocast; in float32 its
    log-probs equal ours bit for bit) and `use_bias_correction_kl=True` (our `kl_ratio_correction`, tested below). The log-probs
    being identical, the only differences are float32 reduction order: rtol 1e-5 (~100 float32 ulps) on the loss
    and atol 1e-6 on gradients of size ~0.1.
    TRL's `_compute_loss` is private and its inputs dict changes between releases: re-verify on a TRL upgrade.
    """
    pytest.importorskip("trl")  # optional: TRL is not a dependency; the maths reference above always runs
    pytest.importorskip("datasets")
    ours, theirs, g_ours, g_theirs = _trl_vs_ours(trl_model_path, tmp_path, loss_type=loss_type, beta=beta)
    torch.testing.assert_close(ours.loss, theirs, rtol=1e-5, atol=1e-7)
    for a, b in zip(g_ours, g_theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert 0 < ours.stats["clip_ratio/region_mean"] < 1


def test_grpo_kl_matches_trl_default_bias_corrected_kl(trl_model_path, tmp_path):
    """TRL 1.16's default KL at beta > 0 is ratio * k3 (`use_bias_correction_kl=True`, DeepSeek-V3.2's unbiased
    reverse-KL gradient); ours is the plain k3 unless `kl_ratio_correction=True`, which must then match TRL. The
    plain k3 must differ from it in the gradient (so this comparison can fail)."""
    pytest.importorskip("trl")
    pytest.importorskip("datasets")
    plain, theirs, g_plain, g_theirs = _trl_vs_ours(trl_model_path, tmp_path / "plain", loss_type="dapo", beta=0.04,
                                                    use_bias_correction_kl=True)
    assert max(float((a - b).abs().max()) for a, b in zip(g_plain, g_theirs)) > 1e-5
    ours, theirs, g_ours, g_theirs = _trl_vs_ours(trl_model_path, tmp_path / "corrected", loss_type="dapo",
                                                  beta=0.04, use_bias_correction_kl=True, kl_ratio_correction=True)
    torch.testing.assert_close(ours.loss, theirs, rtol=1e-5, atol=1e-7)
    for a, b in zip(g_ours, g_theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
