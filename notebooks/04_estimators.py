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
# # 04 · The estimators: bias and variance of GARL and PAFT (Thm 6.1)
#
# $P = \sum_z p(z\mid x)\,p(y^*\mid x, z)$ is an intractable marginal over rationales $z$, so
# $\nabla\ell_q = P^{-q}\nabla\ell_0$ must be estimated from $M$ sampled rationales with weights
# $w_m = p(y^*\mid x, z_m)$:
#
# * **GARL** (Eq. 9/12) plugs $\bar w_M = \frac1M\sum_m w_m$ in for $P$: $\hat g = \bar w_M^{-q}\,\bar g_M$ (optionally
#   with the RLOO baseline). Biased for $q > 0$, because $\mathbb E[\bar w_M^{-q}] \ne P^{-q}$.
# * **PAFT** (Eq. 14) resamples $K$ rationales in proportion to $w$ and does SFT on them, scaled by $\bar w_M^{1-q}$;
#   $\mathbb E[\text{PAFT}\mid\text{pool}]$ = GARL (Prop. D.3), so it has the same bias and more variance (Prop. D.4).
#
# Thm 6.1 gives the leading bias term
#
# $$\mathbb E[\hat g] - \nabla\ell_q = \frac{q}{M P^{q+1}}\left[\tfrac{q+1}{2}\,\nabla\ell_1\operatorname{Var}(w) - \operatorname{Cov}(g, w)\right] + O(M^{-2}).$$
#
# The paper's v1 reads this as a bias of order $q/(MP^{q+1})$, its v2 as $q/(MP^q)$; notebook 01 shows v2 is the
# order when $w\in[0,1]$. Here we measure it: `run_estimators` draws many replicates of each estimator on a
# latent-rationale model (8 rationales, 4 answers) whose success $P$ we set, and compares the Monte Carlo bias with
# the exact leading term (`coef` = projection of the measured bias on the predicted one: 1 when the term is exact).

# %% tags=["parameters"]
from tsallis.notebook import quick_mode

QUICK = quick_mode()  # True under CI or TSALLIS_QUICK=1: small sizes
ESTIMATORS = ("garl", "garl_rloo", "paft")
QS = (0.0, 0.5, 1.0)
MS = (8, 32) if QUICK else (8, 32, 128)
PS = (0.3, 0.1, 0.03)
REPLICATES = 2_000 if QUICK else 20_000  # per cell (SE ~ 1/sqrt); docs/simulate.md used 1e5-8e5 (minutes)
SEED = 0

# %%
import matplotlib.pyplot as plt

from tsallis.notebook import panels, table
from tsallis.simulate.bias import (
    run_bias_cold_start,
    run_bias_expansion,
    verdict_bias,
    verdict_bias_cold_start,
    verdict_bias_order,
)
from tsallis.simulate.experiments import run_estimators
from tsallis.simulate.plots import plot_bias_cold_start, plot_bias_expansion, plot_bias_vs_M, plot_estimators

# %%
r = run_estimators(ESTIMATORS, qs=QS, Ms=MS, Ps=PS, replicates=REPLICATES, seed=SEED)
print(f"{r.samples_per_second:.3g} sample-gradients/s; regime {r.regime!r}, {r.replicates} replicates per cell")

# %% [markdown]
# ## Bias against $P$: Monte Carlo (4 SE bars) vs the Thm 6.1 leading term (dashed)
#
# One panel per estimator at the largest $M$, one colour per $q$ in all three. The same dashed Thm 6.1 curve
# serves all of them: the RLOO baseline keeps GARL's expectation (Prop. 6.2) and so does PAFT (Prop. D.3). Grey
# reference lines have the two stated orders, $P^{-(q+1)}$ (v1) and $P^{-q}$ (v2), anchored at the largest-$q$
# point. With few replicates (quick mode) the small biases are below the noise floor; the full run resolves them.

# %%
panels(lambda estimator, ax: plot_estimators(r, ax=ax, estimator=estimator), r.estimators)
plt.show()

# %% [markdown]
# ## Bias against $M$
#
# The leading term is $\propto 1/M$; $M\cdot|\text{bias}|$ should level off at the Thm 6.1 constant once
# $MP \gg 1$ (for $MP \lesssim 3$ the expansion is not predictive).

# %%
plot_bias_vs_M(r, estimator="garl")
plt.show()

# %% [markdown]
# ## The projection coefficient
#
# `coef` $= \langle \text{bias}, \text{pred}\rangle / \lVert\text{pred}\rVert^2$ with its standard error: 1 when the
# leading term is exact. PAFT has the same bias as GARL (Prop. D.3) and at least its variance (Prop. D.4).

# %%
rows = [rec | {"coef +- SE": f"{rec['coef']:.3g} +- {rec['coef_stderr']:.2g}" if rec["coef"] is not None else None}
        for rec in r.records() if rec["q"] > 0]
table(rows, ["estimator", "q", "M", "P", "bias_norm", "bias_stderr", "predicted_bias_norm", "coef +- SE", "variance"])
ig, ip = r.estimators.index("garl"), r.estimators.index("paft")
print("Var(PAFT) >= Var(GARL) in", int((r.variance[ip] >= r.variance[ig] * (1 - 1e-9)).sum()), "of",
      r.variance[ig].size, "cells")

# %% [markdown]
# ## v1 or v2? The order of the bias in $P$, where Thm 6.1 applies
#
# The expansion's parameter is $\operatorname{Var}(\bar w)/P^2 \le 1/(MP)$, so the leading term describes the bias
# only for $MP \gg 1$. `run_bias_expansion` holds $MP$ fixed along a $P$ grid and measures $M\cdot$bias by Monte
# Carlo with a control variate (the linearisation $P^{-q}\bar g - qP^{-q-1}\mu_g(\bar w - P)$, whose mean is exactly
# $\nabla\ell_q$ by Eq. 8): its slope in $\log P$ is the order the paper states. `run_bias_cold_start` measures
# the plain estimator at the paper's $M = 32$ down to $MP \approx 0.03$, where neither order applies. The verdict
# functions print the criterion they apply.

# %%
x = run_bias_expansion(MP=32.0 if QUICK else 64.0, replicates=2000 if QUICK else 8000)
c = run_bias_cold_start(replicates=5000 if QUICK else 50_000)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
plot_bias_expansion(x, ax=axes[0])
plot_bias_cold_start(c, ax=axes[1])
plt.tight_layout()
for v in (verdict_bias(x), verdict_bias_order(x, "v1"), verdict_bias_order(x, "v2"), verdict_bias_cold_start(c)):
    print(f"{v.claim}: {v.outcome}\n  {v.evidence}\n  criterion: {v.criterion}\n")
