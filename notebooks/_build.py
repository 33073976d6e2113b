"""Write the notebooks of `notebooks/` from the cell texts below (outputs empty, execution_count null).

    python notebooks/_build.py            # rewrite every notebook
    python notebooks/_build.py 03 06      # only those whose name starts with 03 or 06

The notebooks are the artefact users open; this script only keeps them consistent (one parameter-cell layout,
one setup cell, stripped outputs). Edit the cells here, rerun, and commit both.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

QUICK_LINE = 'QUICK = "CI" in os.environ or os.environ.get("TSALLIS_QUICK") == "1"  # CI sets this: small sizes'

TABLE_HELPER = '''\
def table(rows, cols, fmt="{:.3g}"):
    """Show a list of dicts as a Markdown table (floats with 3 significant digits)."""
    cell = lambda v: (fmt.format(v) if isinstance(v, float) else str(v)).replace("|", "\\\\|")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    display(Markdown("\\n".join(lines + ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows])))'''

SETUP = '''\
%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

''' + TABLE_HELPER


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, *, tags: tuple[str, ...] = ()):
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def params(text: str):
    """The first code cell: parameters (papermill tag), with the QUICK switch."""
    return code("import os\n\n" + QUICK_LINE + "\n" + text.strip("\n"), tags=("parameters",))


# --------------------------------------------------------------------------------------------- 01 theory
NB01 = [
    md(r"""
# 01 · The paper's results as computer-algebra checks

Lin & Ie, *How Fast Should a Model Commit to Supervision? Training Reasoning Models on the Tsallis Loss
Continuum* (arXiv 2604.25907) study the family of losses

$$\ell_q(\theta) = -\ln_q P_\theta(y^*\mid x), \qquad \ln_q u = \frac{u^{1-q}-1}{1-q}\quad(\ln_1 = \log),$$

which runs from the RL objective $1 - P$ at $q = 0$ (exact-match reward, RLVR) to the likelihood $-\log P$ at
$q = 1$ (SFT / EM on rationales). The exponent $q$ says **how fast the model commits to the supervision**: the
gradient is the RL gradient amplified by $P^{-q}$.

Every result of the paper is a function in `tsallis.theory` that rebuilds the claim with SymPy, applying the one
definition of $\ln_q$ in `tsallis.core` to symbols, and returns a `Check` record (`id`, `claim`, `method`,
`verified`, `detail`, `steps`, `assumption`, `tight`). The outcome is derived from the record, never set by hand:
a failed step gives "does not hold", an assumption the check had to add gives "holds with an extra assumption",
an order that is not attained gives "holds as a bound (not tight)". Every step can fail: the tests feed each one a
wrong statement and see it fail.
"""),
    params('''
CHECK_IDS = None  # None = all checks, in the paper's order; or e.g. ["4.1", "6.1-v1", "6.1-v2"]
SHOW_STEPS = not QUICK  # print every sub-step of every check
'''),
    code(SETUP + '''

from tsallis import core
from tsallis.theory.checks import CHECKS, run_checks
'''),
    md(r"""
## The loss family, in one definition

`tsallis.core.log_q` accepts SymPy expressions, NumPy arrays and torch tensors; on symbols it gives the
textbook form, so the checks below differentiate and take limits of the same code that trains the models.
"""),
    code('''
import sympy as sp

u, q = sp.symbols("u q", positive=True)
display(sp.Eq(sp.Symbol(r"\\ln_q u"), core.log_q(u, q)))
display(sp.Eq(sp.Symbol(r"\\frac{d}{du}\\ln_q u"), sp.simplify(sp.diff(core.log_q(u, q), u))))
display(sp.Eq(sp.Symbol(r"\\lim_{q \\to 1}\\ln_q u"), sp.limit(core.log_q(u, q), q, 1)))
'''),
    md(r"""
## The statements

**Sec. 2-3, App. A-B: the loss family and what it converges to**

| id | statement |
|---|---|
| `eq1` | $\ln_q u = \frac{u^{1-q}-1}{1-q}$, $\;\frac{d}{du}\ln_q u = u^{-q}$, $\;\lim_{q\to 1}\ln_q u = \log u$ |
| `eq3` | $\ell_q = -\ln_q P$: $\ell_0 = 1-P$, $\ell_1 = -\log P$, $\ell_q(1) = 0$, $\ell_q \le \frac{1}{1-q}$ for $q<1$ |
| `A.1` | with the exact-match reward $R = \mathbb 1[\hat y = y^*]$: $\mathbb E[R] = P$, so $J_0 = 1 - \mathbb E[R]$ |
| `B.1` | $J_q = \mathbb E_i[-\ln_q P_i] \ge -\ln_q \bar P$ (Jensen, $h_q'' = q u^{-q-1}$); excess $\approx \frac q2 \bar P^{-q-1}\operatorname{Var}(P)$ |
| `3.1` | $\arg\min_\theta \sum_j \alpha_j \ell_q(\theta_j) = \dfrac{\alpha^{1/q}}{\sum_k \alpha_k^{1/q}}$ (the escort of $\alpha$), $q\in(0,1]$; a vertex at $\arg\max\alpha$ for $q = 0$ |
| `B.2` | the escort is $\alpha$ at $q = 1$, tends to the mode as $q\to 0^+$, and $\theta^*_j/\theta^*_k$ grows as $q$ falls ($\alpha_j > \alpha_k$) |
| `B.3` | the $q$-log score is strictly proper iff $q = 1$ |

**Sec. 4-5, App. C: gradients, escape times, label noise**

| id | statement |
|---|---|
| `4.1` | $\nabla\ell_q = P^{-q}\,\nabla\ell_0 = P^{1-q}\,\nabla\ell_1$ (amplification of the RL gradient by $P^{-q}$) |
| `eq6` | under gradient flow on $\ell_q$: $\dot p = p^{2-q}\,\lVert\nabla\log P\rVert^2$ |
| `5.1` | $\lVert s\rVert \le C$: $T_q = \Omega\!\left(\frac{p_0^{-(1-q)}}{1-q}\right)$ for $q<1$, $T_1 = \Omega(\log 1/p_0)$ |
| `5.2` | $c \le \lVert s\rVert \le C$: $T_q = \Theta\!\left(\frac{p_0^{-(1-q)}}{1-q}\right)$, $T_1 = \Theta(\log 1/p_0)$, and $T_q/T_{q'}\to\infty$ for $q<q'$ |
| `C.1-sigmoid` | sigmoid model: $T_q = \int_{p_0}^{\delta} \frac{dp}{p^{2-q}(1-p)^2}$ (Eq. 15) $\sim \frac{p_0^{-(1-q)}}{1-q}$ |
| `C.1` | near the optimum ($\lVert s\rVert^2 = h(P)$) escape times agree across $q$ up to $1 + O(\epsilon_0)$ |
| `C.5` | with symmetric label noise $\epsilon$ the stable contamination is $\tilde p^* = \left(\frac{\epsilon}{1-\epsilon}\right)^{1/q}(1+o(1))$ (Eq. 17): $\epsilon$ at $q=1$, $\to 0$ as $q\to 0$ |
| `C.2` | noise-fitting time $T_q^{\rm noise}(\eta) = \Theta\!\left(\frac{\eta^{q+1}}{(q+1)\epsilon}\right)$; $T_0 = \infty$ |

**Sec. 6, App. D: the estimators (GARL, PAFT) and their bias**

| id | statement |
|---|---|
| `eq8` | with $w_m = p(y^*\mid x, z_m)$, $z_m \sim p(z\mid x)$: $\mathbb E[\bar w_M] = P$ and $\mathbb E[\bar g_M] = -\nabla P = \nabla \ell_0$ for every $M$ |
| `6.1` | GARL bias $= \frac{q}{M P^{q+1}}\left[\frac{q+1}{2}\nabla\ell_1\operatorname{Var}(w) - \operatorname{Cov}(g, w)\right] + O(M^{-2})$, zero at $q = 0$ |
| `6.1-v1` | (paper v1) GARL bias $= O\!\left(\frac{q}{M P^{q+1}}\right)$, i.e. it scales as $P^{-(q+1)}$ |
| `6.1-v2` | (paper v2) GARL bias $= O\!\left(\frac{q}{M P^{q}}\right)$ |
| `6.2` | $\mathbb E[\text{RLOO GARL}] = \mathbb E[\text{plug-in GARL}]$ for every $M$ (the baseline has mean zero) |
| `D.2` | GARL $q=0$ = RB-REINFORCE, $q = 1$ = IWAE; PAFT $q = 0$ = $\bar w$-scaled SFT, $q = 1$ = EM / TRICE |
| `D.3` | $\mathbb E[\text{PAFT}\mid\text{pool}] = $ plug-in GARL, so both have the same bias for all $M, K$ |
| `D.4` | $\operatorname{Var}(\text{PAFT}) \ge \operatorname{Var}(\text{GARL})$: GARL Rao-Blackwellizes PAFT |
"""),
    md("""
## Running the checks

Each check is a plain function (`CHECKS[id]()`); `run_checks` runs a list of them and turns an exception into a
failed record, so one broken check never hides the others. The whole set takes a few seconds.
"""),
    code('''
records = run_checks(CHECK_IDS)

table([{"id": f"`{c.id}`", "claim": c.claim, "method": c.method, "outcome": c.outcome, "s": c.seconds}
       for c in records], ["id", "claim", "method", "outcome", "s"], fmt="{:.2f}")
print(f"{sum(c.verified for c in records)}/{len(records)} verified; outcomes other than 'holds': "
      + (", ".join(f"{c.id} ({c.outcome})" for c in records if c.outcome != "holds") or "none"))
'''),
    md(r"""
## Where the paper is loose: the bias order of Thm 6.1 (`6.1-v1`, `6.1-v2`)

The delta method reproduces the paper's leading term exactly (`6.1`). But the bracket is not $O(1)$: the
weights are probabilities, $w_m\in[0,1]$, so $\operatorname{Var}(w)\le \mathbb E[w^2] \le P$, and with a bounded
per-trajectory score $\lVert\nabla\log p(z, y^*\mid x)\rVert \le G$ also $\lVert\nabla\ell_1\rVert\le G$ and
$|\operatorname{Cov}(g, w)| \le G\,\mathbb E[w|w-P|] \le G P$. Hence

$$\lVert\text{bracket}\rVert \le 2GP \quad\Longrightarrow\quad \text{bias} = O\!\left(\frac{qG}{M P^{q}}\right),$$

version 2's order, and it is attained: for $p(z{=}1) = P$, $w = (1, 0)$ the leading term is
$\frac{q(1-q)(1-P)^2}{2MP^q}$, so $M P^q\cdot\text{bias}\to q(1-q)/2 \ne 0$ while $M P^{q+1}\cdot\text{bias}\to 0$.
Version 1's $O(q/(MP^{q+1}))$ follows already from the paper's own $\mathbb E\lVert g\rVert^2<\infty$ (Cauchy-Schwarz:
$\lVert\text{bracket}\rVert \le 2\sqrt{\mathbb E\lVert g\rVert^2}$), so it **holds as a bound, not tight**; version 2
needs the bounded score, an **extra assumption**. The order steps say exactly this:
"""),
    code('''
for c in run_checks(["6.1-v1", "6.1-v2"]):
    print(f"{c.id}: {c.outcome} (assumption: {c.assumption or 'none'}; order attained: {c.tight})\\n  {c.detail}")
    for s in c.steps:
        print(f"   [{'ok' if s.verified else 'FAIL'}] {s.name}\\n          {s.detail}")
'''),
    md("""
`tsallis reproduce` measures the same thing by Monte Carlo where the expansion applies ($MP = 64$,
`tsallis.simulate.bias.run_bias_expansion`): $M\\cdot\\text{bias}$ follows $P^{-q}$, not $P^{-(q+1)}$.

## Every step of every check

A multi-step derivation returns one `Step` per step, so a failure points at the exact step (the residual, the
counterexample or the added assumption is in `detail`).
"""),
    code('''
if SHOW_STEPS:
    for c in records:
        print(f"{c.id}: {c.claim}")
        for s in c.steps:
            print(f"   [{'ok' if s.verified else 'FAIL'}] {s.name}: {s.detail}")
'''),
    md("""
A check that does not hold would be listed here; CI executes this notebook, so a failed step fails the build.
"""),
    code('''
failed = [c.id for c in records if not c.verified]
assert not failed, f"checks that do not hold: {failed}"
'''),
]

# ---------------------------------------------------------------------------------------- 02 escape times
NB02 = [
    md(r"""
# 02 · Cold-start escape: how the time to learn scales with $p_0$

Under gradient flow on $\ell_q$ the success probability of one example obeys (Eq. 6)

$$\dot p = p^{2-q}\,\lVert\nabla\log P\rVert^2 ,$$

so starting from a tiny $p_0$ the time to reach $P = \delta$ is (Thms 5.1-5.2, App. C.1)

$$T_q(p_0) = \Theta\!\left(\frac{p_0^{-(1-q)}}{1-q}\right) \; (q<1), \qquad T_1 = \Theta\!\left(\log \tfrac{1}{p_0}\right).$$

RL ($q = 0$) needs time $\propto 1/p_0$; likelihood training ($q = 1$) only $\log(1/p_0)$. On log axes
$\log T$ against $\log(1/p_0)$ has slope $1-q$. On the sigmoid model the time is exact (Eq. 15):
$T_q = \int_{p_0}^{\delta} \frac{dp}{p^{2-q}(1-p)^2}$.

`tsallis.simulate.experiments.run_escape` integrates the flow (with a rescaled clock, so $p_0 = 10^{-12}$ is no
harder than $10^{-2}$), and returns the escape time, the exact integral where one exists, the asymptotic law and
the fitted slopes.
"""),
    params('''
QS = (0.0, 0.25, 0.5, 0.75, 1.0)
P0S = tuple(10.0 ** -(k / 2) for k in range(2, 17, 2 if QUICK else 1))  # 1e-1 .. 1e-8
MODELS = ("sigmoid", "softmax:10") if QUICK else ("sigmoid", "softmax:10", "latent:8,4")
DELTA = 0.5
TRAIN_SEEDS = 4 if QUICK else 16  # stochastic training (last section)
TRAIN_MAX_STEPS = 500 if QUICK else 3000
'''),
    code(SETUP + '''

from tsallis.simulate.experiments import run_dispersion, run_escape
from tsallis.simulate.plots import plot_dispersion, plot_escape, plot_train
from tsallis.simulate.training import run_train
'''),
    md("""
## Flow vs exact vs asymptotic

Markers: the integrated flow; dashed: the exact Eq. (15) (sigmoid, and symmetric softmax where
$T = \\frac{N-1}{N}\\times$ Eq. 15); dotted: the leading-order law.
"""),
    code('''
results = {m: run_escape(m, qs=QS, p0s=P0S, delta=DELTA) for m in MODELS}
fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5))
for ax, r in zip(np.atleast_1d(axes), results.values()):
    plot_escape(r, ax=ax)
plt.tight_layout()
'''),
    md("""
**Slopes.** The fitted slope of $\\log T$ against $\\log(1/p_0)$ on the smallest $p_0$, next to the same fit
applied to the asymptotic law ($1-q$ for $q<1$; for $q = 1$ the log law's local slope). The excess at
$q = 0.75$ is the finite-$p_0$ remainder $8\\delta^q/q$ of App. C.1, which fades as $p_0 \\to 0$.
"""),
    code('''
rows = []
for m, r in results.items():
    err = np.nanmax(np.abs(r.t_escape / r.t_exact - 1)) if np.isfinite(r.t_exact).any() else float("nan")
    for q, s, law in zip(r.qs, r.slopes, r.law_slopes):
        rows.append({"model": m, "q": float(q), "fitted slope": float(s), "law slope": float(law),
                     "1 - q": 1 - float(q), "max rel. err vs Eq. 15": float(err)})
table(rows, ["model", "q", "fitted slope", "law slope", "1 - q", "max rel. err vs Eq. 15"])
for m, r in results.items():
    assert np.all(np.abs(r.slopes - r.law_slopes) < 0.05), (m, r.slopes, r.law_slopes)
'''),
    md("""
**Convergence to the law.** The ratio $T / T_{\\rm asymptotic}$ approaches 1 as $p_0 \\to 0$ for $q<1$ (for
$q = 1$ the remainder is additive, $\\log\\delta + O(1)$, so the ratio converges only logarithmically).
"""),
    code('''
r = results["sigmoid"]
ax = plt.subplots(figsize=(6, 4))[1]
for i, q in enumerate(r.qs):
    ax.semilogx(1 / r.p0s, r.t_escape[i] / r.t_asymptotic[i], "o-", ms=3, label=f"q={q:g}")
ax.axhline(1, color="grey", lw=0.8)
ax.set(xlabel="$1/p_0$", ylabel="$T / T_{asymptotic}$", title="sigmoid: ratio to the leading-order law")
ax.legend(fontsize=8);
'''),
    md("""
## Many examples sharing parameters (Prop. B.1)

With a dataset, $\\ell_q$ weights each example's $\\nabla \\log P_i$ by $P_i^{1-q}$: $q$ decides how much the hard
examples count. `run_dispersion` runs the flow on four examples ($p_0$ from $10^{-4}$ to $0.1$) sharing one
skill parameter; the hardest example's escape speeds up with $q$, and the Jensen gap
$J_q - (-\\ln_q \\bar P) \\ge 0$ of Prop. B.1 is zero at $q = 0$.
"""),
    code('''
d = run_dispersion(qs=(0.0, 0.5, 1.0), num_times=100 if QUICK else 200)
plot_dispersion(d)
table([{"q": float(q), **{f"p0={p:.0e}": float(t) for p, t in zip(d.p0s, d.t_escape[i])},
        "min Jensen gap": float(d.excess[i].min())} for i, q in enumerate(d.qs)],
      ["q"] + [f"p0={p:.0e}" for p in d.p0s] + ["min Jensen gap"])
'''),
    md("""
## From flow to stochastic training

`run_train` trains the latent-rationale model with Monte Carlo estimators (GRPO, GARL) under SGD and Adam and
counts steps until $P \\ge 1/2$. Under SGD the $q$ effect follows the flow. Under Adam, for a single example,
$P^{-q}$ is a common scalar on every coordinate and the per-parameter normalisation divides it out by
construction; the paper's remark is about reweighting *across* examples, which `tsallis reproduce` judges on the
shared-parameter `dataset:4` (the reweighting survives Adam, the speed-up does not: `docs/simulate.md`, section 5).
GRPO stalls at small $p_0$ because most groups have zero advantage.
"""),
    code('''
t = run_train("latent:8,4", methods=("grpo", "garl"), qs=(0.0, 0.5, 1.0), p0s=(1e-2, 1e-3),
              optimizers=("sgd", "adam"), seeds=TRAIN_SEEDS, max_steps=TRAIN_MAX_STEPS)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
for ax, opt in zip(axes, t.optimizers):
    plot_train(t, ax=ax, optimizer=opt)
plt.tight_layout()
table(t.summary(), ["method", "optimizer", "p0", "median_steps", "mean_steps", "ci95", "escaped", "zero_adv_frac"])
'''),
]

# ---------------------------------------------------------------------------------------- 03 label noise
NB03 = [
    md(r"""
# 03 · Label noise: what each $q$ memorises

If a fraction $\epsilon$ of the labels is wrong, the population objective is $\sum_j \tilde\alpha_j \ell_q(\theta_j)$
with the noisy label distribution $\tilde\alpha$. Its minimiser (Thm 3.1) is the **escort**
$\theta^*_j = \tilde\alpha_j^{1/q} / \sum_k \tilde\alpha_k^{1/q}$: $q = 1$ reproduces the noise
($\tilde p^* = \epsilon$), $q \to 0$ concentrates on the mode and ignores it. For a binary label the stable
contamination is (Eq. 17)

$$\tilde p^*(q) = \left(\frac{\epsilon}{1-\epsilon}\right)^{1/q}(1 + o(1)),$$

and the time to fit noise up to level $\eta$ is (Prop. C.2) $T_q^{\rm noise}(\eta) = \Theta\!\left(\frac{\eta^{q+1}}{(q+1)\epsilon}\right)$,
infinite at $q = 0$. So small $q$ is robust to noise but (notebook 02) slow to escape a cold start: the
speed-robustness trade-off that notebook 05 resolves with schedules.

`run_noise` integrates the flow from the uniform start, records the contamination curve $1-P(t)$ and its
equilibrium against the escort, and times noise fitting from a tiny contamination.
"""),
    params('''
QS = (0.0, 0.25, 0.5, 0.75, 1.0)
EPS = 0.1
MODELS = ("direct", "softmax:10") if QUICK else ("direct", "sigmoid", "softmax:10")
T_MAX = 1e6
NUM_TIMES = 80 if QUICK else 200
'''),
    code(SETUP + '''

from tsallis.simulate.experiments import run_noise
from tsallis.simulate.plots import plot_noise, plot_noise_fitting
'''),
    md("""
## Memorisation against $q$

Solid: contamination $1-P(t)$ along the flow; dashed: the escort equilibrium. `direct` is the binary model
$P = \\theta$ with a constant score (the paper's assumptions); `softmax:10` has ten labels with the noise spread
symmetrically over the nine wrong ones.
"""),
    code('''
results = {m: run_noise(m, qs=QS, eps=EPS, t_max=T_MAX, num_times=NUM_TIMES) for m in MODELS}
fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5))
for ax, r in zip(np.atleast_1d(axes), results.values()):
    plot_noise(r, ax=ax)
plt.tight_layout()
'''),
    md("""
## Equilibria vs the escort

The equilibrium the flow reaches, the escort of the noisy label distribution (Thm 3.1; for two labels the exact
$\\tilde p^* = r/(1+r)$, $r = (\\epsilon/(1-\\epsilon))^{1/q}$) and Eq. (17). With $N > 2$ labels the paper
reduces the problem to pairs {clean, wrong $k$}, and the reduction is exact: the flow's split of each pair,
$\\theta_k/(\\theta_{\\rm clean}+\\theta_k)$, is the binary equilibrium at the pair's noise rate
$\\epsilon_k = \\tilde\\alpha_k/(\\tilde\\alpha_{\\rm clean}+\\tilde\\alpha_k)$ (columns "pair" and "binary at the pair
rate"). The "Eq. 17" column uses the total rate $\\epsilon$, which is not the paper's statement for $N$ labels.
"""),
    code('''
rows = [{"model": m, "q": float(q), "flow": float(r.contamination[i]), "escort": float(r.theory[i]),
         "Eq. 17": float(r.theory_asymptotic[i]),
         "flow / escort": float(r.contamination[i] / r.theory[i]) if r.theory[i] > 0 else float("nan"),
         "pair": float(r.pair_contamination[i]), "binary at the pair rate": float(r.pair_theory[i])}
        for m, r in results.items() for i, q in enumerate(r.qs)]
table(rows, ["model", "q", "flow", "escort", "Eq. 17", "flow / escort", "pair", "binary at the pair rate"],
      fmt="{:.4g}")
r = results["direct"]
assert np.allclose(r.contamination[r.qs >= 0.5], r.theory[r.qs >= 0.5], rtol=1e-3)
'''),
    md("""
## Noise-fitting time (Prop. C.2)

On `direct` ($\\lVert\\nabla P\\rVert$ bounded below, as Prop. C.2 assumes) the time to reach contamination
$\\eta$ follows $\\eta^{q+1}/((q+1)\\epsilon)$ with slope $q+1$. On softmax models the clean-label score vanishes as
$P\\to 1$, the lower bound $c_*$ fails, and noise fitting becomes a cold-start escape toward the noisy label: the
time is dominated by the starting contamination and nearly flat in $\\eta$ (curves that never reach $\\eta$ are
omitted).
"""),
    code('''
fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5))
for ax, r in zip(np.atleast_1d(axes), results.values()):
    plot_noise_fitting(r, ax=ax)
plt.tight_layout()
table([{"model": m, "q": float(q), "fitted slope": float(r.fit_slopes[i]), "law q+1": float(q) + 1}
       for m, r in results.items() for i, q in enumerate(r.qs) if q > 0],
      ["model", "q", "fitted slope", "law q+1"])
'''),
]

# ----------------------------------------------------------------------------------------- 04 estimators
NB04 = [
    md(r"""
# 04 · The estimators: bias and variance of GARL and PAFT (Thm 6.1)

$P = \sum_z p(z\mid x)\,p(y^*\mid x, z)$ is an intractable marginal over rationales $z$, so
$\nabla\ell_q = P^{-q}\nabla\ell_0$ must be estimated from $M$ sampled rationales with weights
$w_m = p(y^*\mid x, z_m)$:

* **GARL** (Eq. 9/12) plugs $\bar w_M = \frac1M\sum_m w_m$ in for $P$: $\hat g = \bar w_M^{-q}\,\bar g_M$ (optionally
  with the RLOO baseline). Biased for $q > 0$, because $\mathbb E[\bar w_M^{-q}] \ne P^{-q}$.
* **PAFT** (Eq. 14) resamples $K$ rationales in proportion to $w$ and does SFT on them, scaled by $\bar w_M^{1-q}$;
  $\mathbb E[\text{PAFT}\mid\text{pool}]$ = GARL (Prop. D.3), so it has the same bias and more variance (Prop. D.4).

Thm 6.1 gives the leading bias term

$$\mathbb E[\hat g] - \nabla\ell_q = \frac{q}{M P^{q+1}}\left[\tfrac{q+1}{2}\,\nabla\ell_1\operatorname{Var}(w) - \operatorname{Cov}(g, w)\right] + O(M^{-2}).$$

The paper's v1 reads this as a bias of order $q/(MP^{q+1})$, its v2 as $q/(MP^q)$; notebook 01 shows v2 is the
order when $w\in[0,1]$. Here we measure it: `run_estimators` draws many replicates of each estimator on a
latent-rationale model (8 rationales, 4 answers) whose success $P$ we set, and compares the Monte Carlo bias with
the exact leading term (`coef` = projection of the measured bias on the predicted one: 1 when the term is exact).
"""),
    params('''
ESTIMATORS = ("garl", "garl_rloo", "paft")
QS = (0.0, 0.5, 1.0)
MS = (8, 32) if QUICK else (8, 32, 128)
PS = (0.3, 0.1, 0.03)
REPLICATES = 2_000 if QUICK else 20_000  # per cell (SE ~ 1/sqrt); docs/simulate.md used 1e5-8e5 (minutes)
SEED = 0
'''),
    code(SETUP + '''

from tsallis.simulate.bias import (
    run_bias_cold_start,
    run_bias_expansion,
    verdict_bias,
    verdict_bias_cold_start,
    verdict_bias_order,
)
from tsallis.simulate.experiments import run_estimators
from tsallis.simulate.plots import plot_bias_cold_start, plot_bias_expansion, plot_estimators
'''),
    code('''
r = run_estimators(ESTIMATORS, qs=QS, Ms=MS, Ps=PS, replicates=REPLICATES, seed=SEED)
print(f"{r.samples_per_second:.3g} sample-gradients/s; regime {r.regime!r}, {r.replicates} replicates per cell")
'''),
    md("""
## Bias against $P$: Monte Carlo (4 SE bars) vs the Thm 6.1 leading term (dashed)

Grey reference lines have the two stated orders, $P^{-(q+1)}$ (v1) and $P^{-q}$ (v2), anchored at the largest-$q$
point. With few replicates (quick mode) the small biases are below the noise floor; the full run resolves them.
"""),
    code('''
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
plot_estimators(r, ax=axes[0], estimator="garl", M_index=0)
plot_estimators(r, ax=axes[1], estimator="garl", M_index=-1)
plt.tight_layout()
'''),
    md("""
## Bias against $M$

The leading term is $\\propto 1/M$; $M\\cdot|\\text{bias}|$ should level off at the Thm 6.1 constant once
$MP \\gg 1$ (for $MP \\lesssim 3$ the expansion is not predictive).
"""),
    code('''
e = r.estimators.index("garl")
ax = plt.subplots(figsize=(6, 4))[1]
for i, q in enumerate(r.qs):
    for b, P in enumerate(r.Ps):
        if q > 0:
            ax.errorbar(r.Ms, r.Ms * r.bias_norm[e, i, :, b], yerr=4 * r.Ms * r.bias_stderr[e, i, :, b], fmt="o-",
                        ms=3, label=f"q={q:g}, P={P:g}")
            ax.plot(r.Ms, r.Ms * r.predicted_bias_norm[i, :, b], "k:", lw=0.8)
ax.set(xscale="log", yscale="log", xlabel="M", ylabel="M |bias|", title="GARL: M x bias (dotted: Thm 6.1 term)")
ax.legend(fontsize=7, ncol=2);
'''),
    md("""
## The projection coefficient

`coef` $= \\langle \\text{bias}, \\text{pred}\\rangle / \\lVert\\text{pred}\\rVert^2$ with its standard error: 1 when the
leading term is exact. PAFT has the same bias as GARL (Prop. D.3) and at least its variance (Prop. D.4).
"""),
    code('''
rows = [rec for rec in r.records() if rec["q"] > 0]
for rec in rows:
    rec["coef +- SE"] = f"{rec['coef']:.3g} +- {rec['coef_stderr']:.2g}" if rec["coef"] is not None else "-"
table(rows, ["estimator", "q", "M", "P", "bias_norm", "bias_stderr", "predicted_bias_norm", "coef +- SE", "variance"])
ig, ip = r.estimators.index("garl"), r.estimators.index("paft")
print("Var(PAFT) >= Var(GARL) in", int((r.variance[ip] >= r.variance[ig] * (1 - 1e-9)).sum()), "of",
      r.variance[ig].size, "cells")
'''),
    md("""
## v1 or v2? The order of the bias in $P$, where Thm 6.1 applies

The expansion's parameter is $\\operatorname{Var}(\\bar w)/P^2 \\le 1/(MP)$, so the leading term describes the bias
only for $MP \\gg 1$. `run_bias_expansion` holds $MP$ fixed along a $P$ grid and measures $M\\cdot$bias by Monte
Carlo with a control variate (the linearisation $P^{-q}\\bar g - qP^{-q-1}\\mu_g(\\bar w - P)$, whose mean is exactly
$\\nabla\\ell_q$ by Eq. 8): its slope in $\\log P$ is the order the paper states. `run_bias_cold_start` measures
the plain estimator at the paper's $M = 32$ down to $MP \\approx 0.03$, where neither order applies. The verdict
functions print the criterion they apply.
"""),
    code('''
x = run_bias_expansion(MP=32.0 if QUICK else 64.0, replicates=2000 if QUICK else 8000)
c = run_bias_cold_start(replicates=5000 if QUICK else 50_000)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
plot_bias_expansion(x, ax=axes[0])
plot_bias_cold_start(c, ax=axes[1])
plt.tight_layout()
for v in (verdict_bias(x), verdict_bias_order(x, "v1"), verdict_bias_order(x, "v2"), verdict_bias_cold_start(c)):
    print(f"{v.claim}: {v.outcome}\\n  {v.evidence}\\n  criterion: {v.criterion}\\n")
'''),
]

# ----------------------------------------------------------------------------------------- 05 schedules
NB05 = [
    md(r"""
# 05 · Schedules for $q$: the speed-robustness front

Notebooks 02 and 03 pull in opposite directions: $q = 1$ escapes a cold start in $\log(1/p_0)$ time but
memorises label noise ($\tilde p^* = \epsilon$); $q = 0$ is robust to noise but needs time $\propto 1/p_0$.
The paper suggests moving $q$ during training. Reading SFT-then-RL as a step schedule $q = 1 \to 0$ is its
interpretation; it runs only constant $q$. `tsallis.core.QSchedule` implements constant, step (at a time or at a
success level), linear, cosine and adaptive ($q = 1 - P$) schedules; `run_schedules` integrates the noisy
gradient flow under each one on a cold start, and records the escape time (first $P\ge\delta$) and the
contamination at the end of the horizon.
"""),
    params('''
MODEL = "softmax:10"
P0 = 1e-3
EPS = 0.1
T_END = 5000.0
DELTA = 0.5
'''),
    code(SETUP + '''

from tsallis.core import QSchedule
from tsallis.simulate.experiments import DEFAULT_SCHEDULES, run_schedules
from tsallis.simulate.plots import plot_schedules
'''),
    md("""
## The schedules

Each schedule is a `QSchedule` spec (plus our `adaptive_power` rule $q = 1 - P^4$, which keeps $q$ near 1 until
$P$ is large). The step schedules switch $q = 1 \\to 0$ at a time or when the success reaches a level.
"""),
    code('''
for name, spec in DEFAULT_SCHEDULES:
    print(f"{name:16s} {spec}")
ax = plt.subplots(figsize=(6, 3.5))[1]
t = np.linspace(0, T_END, 400)
for kind in ("linear", "cosine"):
    ax.plot(t, [QSchedule(kind)(s, total=T_END) for s in t], label=kind)
ax.plot(t, [QSchedule("step", switch_at=200.0)(s, total=T_END) for s in t], label="step@t=200")
ax.set(xlabel="time", ylabel="q", title="time-driven schedules (q_start = 1, q_end = 0)")
ax.legend();
'''),
    code('''
r = run_schedules(MODEL, p0=P0, eps=EPS, delta=DELTA, t_end=T_END)
plot_schedules(r)
table(r.records(), ["schedule", "t_escape", "contamination", "q_final", "pareto"])
'''),
    md("""
**Reading the front.** The step $q = 1\\to 0$ switched when $P$ reaches $\\delta$ (or shortly after escape) is
Pareto-optimal: it escapes as fast as constant $q = 1$ and ends as clean as $q = 0$ (cleaner, in fact: constant
$q = 0$ spent its horizon escaping). Switching too early ($P = 0.1$) costs escape time; switching late costs only
decay time. Linear and cosine anneals tied to a fixed horizon reach $q = 0$ only at $t_{\\rm end}$ and end with
about twice the contamination. The adaptive rules escape nearly as fast and end as clean, but are weakly
dominated by the $P$-threshold step.
"""),
    code('''
i = {n: k for k, n in enumerate(r.names)}
step, q0, q1 = i["step@P=0.5"], i["q=0"], i["q=1"]
print(f"step@P=0.5: escape {r.t_escape[step]:.3g} (q=1: {r.t_escape[q1]:.3g}, q=0: {r.t_escape[q0]:.3g}); "
      f"contamination {r.contamination[step]:.2e} (q=1: {r.contamination[q1]:.2e}, q=0: {r.contamination[q0]:.2e})")
assert r.pareto[step] and r.t_escape[step] <= 1.05 * r.t_escape[q1]
'''),
]


# --------------------------------------------------------------------------------------- 06 llm cold start
NB06 = [
    md(r"""
# 06 · Cold start with a language model: GRPO vs GARL vs PAFT, live

The LLM version of notebook 02. A model samples a rationale $z$ and then an answer; the training signal is the
gold answer $y^*$. The three estimators of `tsallis.llm` share one rollout and one forward/backward per step:

* **GRPO** samples answers and rewards exact matches, normalised within the group of $M$ samples. At cold start
  almost every group is all-zero (`frac_reward_zero_std` $\approx 1$), so there is no signal.
* **GARL** (Eq. 12) marginalises the answer: $w_m = p(y^*\mid x, z_m)$ is always positive, and the $P^{-q}$
  amplification (estimated as $\bar w_M^{-q}$) rescales the RL gradient towards the likelihood gradient.
* **PAFT** (Eq. 14) resamples rationales $\propto w$ and does SFT on them, attenuated by $\bar w_M^{1-q}$.

Each run shows a live progress bar (reward, $\log\hat P$, weight ESS, $q$, gradient norm); the curves follow.

**CPU (default, and CI).** `MODEL_PATH = None` uses the toy register-machine task of `tsallis.llm.toy`. In quick
mode the model is a tiny *random-init* GPT-2 (seconds; it can only show the mechanics). Otherwise it is the
pretrained toy model (built on first use in ~5 CPU minutes and cached in `~/.cache/tsallis/toy`); its $p_0$ is
set by `TOY_N_STEPS` (about $10^{-3}$ at 4 steps, `docs/llm.md`).

**GPU, real model and data.** Set `MODEL_PATH` to a local Hugging Face checkpoint (the paper: Qwen3-0.6B, post-trained,
thinking mode) and `DATA_DIR` to the official files of `TASK` (FinQA, HotpotQA or MuSiQue, laid out as in
`docs/datasets.md`), and raise the sizes (paper: $M = 32$, rationale budget 4k-128 tokens for FinQA, learning
rate ~1e-6). Nothing is downloaded: both paths must exist on the machine. `dtype="auto"` trains in bf16 on CUDA.
This path is not executed in CI.
"""),
    params('''
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
OUTPUT_DIR = os.path.join(os.environ.get("TSALLIS_NOTEBOOK_TMP", "runs"), "notebook06")
'''),
    code(SETUP + '''

import torch

from tsallis.llm.config import TrainConfig
from tsallis.llm.data import load_splits
from tsallis.llm.toy import ToyTask, make_examples, tiny_random_model
from tsallis.llm.trainer import Trainer

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network: models and data are local paths
if not torch.cuda.is_available():
    torch.set_num_threads(1)  # tiny models on a shared CPU run far faster on one thread
'''),
    md("""
## Model and data
"""),
    code('''
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
print(f"model: {model}\\ntask: {task_name}, {len(train)} train / {len(val)} held-out examples")
print(f"prompt: {ex.prompt!r}\\ngold answer y*: {ex.answer!r}\\ngold rationale: {ex.rationale!r}")
'''),
    code('''
def config(method, q, **kw):
    """The shared run settings: same rollout budget (M x prompts per step) and steps for every method."""
    shared = dict(model=model, task=task_name, method=method, q=q, num_generations=NUM_GENERATIONS,
                  prompts_per_step=PROMPTS_PER_STEP, max_rationale_tokens=MAX_RATIONALE_TOKENS,
                  max_answer_tokens=MAX_ANSWER_TOKENS, learning_rate=LEARNING_RATE, max_steps=MAX_STEPS,
                  eval_every=EVAL_EVERY, save_every=0, seed=SEED, progress_bar=True,
                  output_dir=os.path.join(OUTPUT_DIR, f"{method}-q{q:g}"))
    if DATA_DIR is not None:  # the trainer then evaluates as the paper: p@1 / p@k / maj@k, relaxed match
        shared.update(data_dir=DATA_DIR, prompt_style=PROMPT_STYLE, eval_samples=4, eval_metric="eval/maj@4")
    return TrainConfig(**{**shared, **kw})
'''),
    md(r"""
## How cold is the start?

$p_0 = P(y^*\mid x)$ is an intractable marginal over rationales; `Trainer.estimate_log_p` estimates
$\log\hat P = \log\frac1M\sum_m p(y^*\mid x, z_m)$ per held-out prompt (Eq. 8).
"""),
    code('''
probe = Trainer(config("garl", 0.0, progress_bar=False), train, val)
log_p0 = probe.estimate_log_p(val, num_samples=NUM_GENERATIONS)
print(f"mean log P-hat = {log_p0.mean():.2f}  (p0 ~ {np.exp(log_p0).mean():.2e}, median log P-hat "
      f"{np.median(log_p0):.2f}, {len(val)} prompts x {NUM_GENERATIONS} rationales)")
del probe
'''),
    md("""
## Train, with the same budget for every method
"""),
    code('''
results = {}
for method, q in METHODS:
    label = "grpo" if method == "grpo" else f"{method} q={q:g}"
    trainer = Trainer(config(method, q), train, val)  # evaluation: toy accuracy, or the paper's metrics
    results[label] = trainer.train().history
'''),
    md(r"""
## Curves

`reward`: exact-match rate of the sampled answers; `frac_reward_zero_std`: share of prompts whose $M$ rewards are
all equal (GRPO's silent groups); `log_p_hat/mean`: $\log\hat P$ of the batch (GARL/PAFT); `weights/ess`: Kish
effective sample size of the weights $w_m$, in $[1, M]$; and the held-out evaluation. Every metric is
documented in `docs/llm.md`.
"""),
    code('''
keys = ["reward", "frac_reward_zero_std", "log_p_hat/mean", "weights/ess", "eval/accuracy"]
keys = [k for k in keys if any(k in m for h in results.values() for m in h)] + \\
       [k for k in ("eval/maj@4", "eval/p@1") if any(k in m for h in results.values() for m in h)]
fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.4))
for label, history in results.items():
    for ax, key in zip(axes, keys):
        pts = [(m["step"], m[key]) for m in history if key in m]
        if pts:
            ax.plot(*zip(*pts), "o-", ms=3, label=label)
for ax, key in zip(axes, keys):
    ax.set(title=key, xlabel="step")
axes[0].legend(fontsize=8)
plt.tight_layout()
'''),
    code('''
final = [{"run": label, **{k: h[-1][k] for k in ("reward", "log_p_hat/mean", "weights/ess", "frac_reward_zero_std")
                           if k in h[-1]}} for label, h in results.items()]
table(final, ["run", "reward", "frac_reward_zero_std", "log_p_hat/mean", "weights/ess"])
'''),
    md("""
**What to expect.** With the tiny random model (quick mode) nothing is learnt in a few steps: the run only
checks the machinery. On the pretrained toy model at $p_0\\approx 10^{-3}$ (100 steps, `docs/llm.md`) GRPO stalls
with `frac_reward_zero_std` $\\approx 1$, as the paper reports; GARL at $q\\ge 0.5$ and PAFT raise $\\log\\hat P$ by
~9 nats, but on this testbed by hedging the answer distribution (the weight ESS goes to $M$), not by better
reasoning, so held-out accuracy does not rise. The pathwise-off ablation (`TrainConfig(pathwise=False)`)
removes the hedging. The paper's cold-start escape on FinQA (Table 1: q = 0.75 reaches m@16 38.3, GRPO 0) needs
the GPU path above; notebook 07 runs the paper's configurations.
"""),
]

# ------------------------------------------------------------------------------------- 07 llm paper runs
NB07 = [
    md(r"""
# 07 · The paper's runs: FinQA, HotpotQA, MuSiQue (Tables 1-3)

Lin & Ie train post-trained Qwen3-0.6B (thinking mode) with GRPO, GARL and PAFT on subsets of FinQA, HotpotQA
and MuSiQue, from a **cold start** (bare linearised input, no instruction: $P$ tiny) or a **warm start** (task
prompt with answer-format instructions), with $M = 32$ rationales, budget forcing of `</think>`, the checkpoint
with the best validation maj@16, and test p@1 / p@16 / m@16 from 16 samples with a relaxed substring match.

`configs/paper/{dataset}_{cold,warm}.yaml` hold those settings (each value marked "paper" or "ours";
`configs/paper/README.md` maps every table entry to a base file and its `method`/`q` override). This notebook runs
a list of table entries from them, given local paths, and lays our numbers beside the paper's.

**CPU (default, and CI).** `MODEL_PATH = None` runs the same pipeline with `configs/tiny/{dataset}.yaml`: the
fixture rows in `tests/fixtures/` and a tiny random-init model, a few steps, $k = 2$ samples. Its numbers are
near zero by construction; it checks the mechanics, not the paper.

**GPU.** Set `MODEL_PATH` (a local Qwen3-0.6B directory) and `DATA_ROOT` (a folder with `finqa/`, `hotpotqa/`,
`musique/` holding the official files, see `docs/datasets.md`). One paper run is hours on one GPU (300 steps of
8 prompts x 32 rationales of up to 4k tokens); run the entries you need, or use
`accelerate launch -m tsallis.llm train --config ...` for the long ones. Not executed in CI.
"""),
    params('''
MODEL_PATH = None  # None: CPU path (tiny random model, fixture data). GPU: e.g. "/models/Qwen3-0.6B"
DATA_ROOT = None  # None: tests/fixtures. GPU: folder with finqa/, hotpotqa/, musique/ (official files)
DATASETS = ("finqa", "hotpotqa", "musique")
# Table entries to run: (start, method, q). "base" = no training (Table 3's first row). The paper's full lists:
#   Table 1 (finqa only): [("cold", "grpo", 0)] + [("cold", "garl", q) for q in (0, .25, .5, .75, 1)]
#   Table 2: [("warm", "grpo", 0), ("cold", "garl", .75), ("cold", "garl", 1)]
#   Table 3: [("warm", "base", 0), ("warm", "grpo", 0), ("warm", "garl", 0), ("warm", "garl", .25),
#             ("warm", "garl", .75), ("warm", "paft", .25), ("warm", "paft", .75)]
RUNS = [("warm", "grpo", 0.0), ("cold", "garl", 0.75)] if QUICK else \\
       [("warm", "base", 0.0), ("warm", "grpo", 0.0), ("cold", "garl", 0.75), ("cold", "garl", 1.0)]
MAX_STEPS = None  # None: the config's value (paper configs: 300; tiny: 3)
OVERRIDES = {}  # any config value for every entry, e.g. {"max_rationale_tokens": 256} for a short GPU smoke test
OUTPUT_DIR = os.path.join(os.environ.get("TSALLIS_NOTEBOOK_TMP", "runs"), "notebook07")
'''),
    code(SETUP + '''

import dataclasses
import warnings

import torch

from tsallis.llm.config import load_config
from tsallis.llm.trainer import Trainer

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network: models and data are local paths
if not torch.cuda.is_available():
    torch.set_num_threads(1)
warnings.filterwarnings("ignore", message=".*available; (using all|splitting)")  # fixtures are smaller than asked
'''),
    md(r"""
## The paper's numbers

Transcribed from Lin & Ie (arXiv 2604.25907 v1), Tables 1-3 (percent). Table 3 reports m@16 only; its GARL
entries for HotpotQA and MuSiQue are peak-before-collapse values.
"""),
    code('''
PAPER = {  # (dataset, start, method, q) -> (p@1, p@16, m@16); None where the paper gives no number
    ("finqa", "cold", "grpo", 0.0): (0, 0, 0), ("finqa", "cold", "garl", 0.0): (0, 0, 0),
    ("finqa", "cold", "garl", 0.25): (0, 0, 0), ("finqa", "cold", "garl", 0.5): (0, 0, 0),
    ("finqa", "cold", "garl", 0.75): (30.5, 61.1, 38.3), ("finqa", "cold", "garl", 1.0): (21.9, 58.7, 33.5),
    ("hotpotqa", "cold", "garl", 0.75): (53.5, 74.1, 57.2), ("hotpotqa", "cold", "garl", 1.0): (48.7, 75.5, 56.6),
    ("musique", "cold", "garl", 0.75): (26.8, 58.9, 34.8), ("musique", "cold", "garl", 1.0): (21.6, 58.1, 32.5),
    ("finqa", "warm", "grpo", 0.0): (18.9, 48.4, 26.9), ("hotpotqa", "warm", "grpo", 0.0): (29.1, 55.1, 33.5),
    ("musique", "warm", "grpo", 0.0): (13.6, 37.3, 15.8),
}
TABLE3_M16 = {  # warm start, m@16: (method, q) -> (FinQA, HotpotQA, MuSiQue)
    ("base", 0.0): (12.6, 22.2, 8.9), ("grpo", 0.0): (26.9, 33.5, 15.8), ("garl", 0.0): (38.3, 21.6, 9.1),
    ("garl", 0.25): (38.7, 22.9, 24.3), ("garl", 0.75): (37.6, 46.8, 19.7), ("paft", 0.25): (26.6, 47.0, 9.0),
    ("paft", 0.75): (28.6, 47.9, 22.4),
}
for (method, q), m16 in TABLE3_M16.items():
    for d, v in zip(("finqa", "hotpotqa", "musique"), m16):
        PAPER.setdefault((d, "warm", method, q), (None, None, v))
'''),
    md("""
## One table entry: config -> data -> train -> select -> test

`paper_run` loads the base file with the entry's overrides (`tsallis.llm.config.load_config`, exactly what
`tsallis llm train --config FILE --method ... --q ...` does). `Trainer(cfg)` reads the dataset splits
(`tsallis.llm.data.load_splits`: `data_dir`, `prompt_style`, `data_seed`) and evaluates the `eval_split` every
`eval_every` steps with the paper's protocol (`eval_samples` samples, budget forcing, `eval_scorer`), keeping the
checkpoint with the best validation maj@k in `best/`. That checkpoint is then evaluated on the test split.
"base" skips training and evaluates the starting model.
"""),
    code('''
if MODEL_PATH is None:  # the tiny random-init stand-in for Qwen3-0.6B that configs/tiny/*.yaml expect
    from tsallis.llm.tiny import make_tiny_model

    tiny = str(make_tiny_model(os.path.join(OUTPUT_DIR, "tiny-model")))


def entry_config(dataset, start, method, q):
    """The base file of the entry with its overrides: model, data path, start, method, q, output directory."""
    base = f"configs/paper/{dataset}_{start}.yaml" if MODEL_PATH else f"configs/tiny/{dataset}.yaml"
    overrides = dict(model=MODEL_PATH or tiny, prompt_style=start, method="grpo" if method == "base" else method,
                     q=q, output_dir=os.path.join(OUTPUT_DIR, f"{dataset}-{start}-{method}-q{q:g}"),
                     data_dir=os.path.join(DATA_ROOT, dataset) if DATA_ROOT else f"tests/fixtures/{dataset}")
    overrides.update(OVERRIDES, **({} if MAX_STEPS is None else {"max_steps": MAX_STEPS}))
    return load_config(base, overrides)
'''),
    code('''
def paper_run(dataset, start, method, q):
    """Train (unless "base"), pick the best validation checkpoint, return its test metrics."""
    cfg = entry_config(dataset, start, method, q)
    best = Trainer(cfg).train().best_checkpoint if method != "base" else None
    test_cfg = dataclasses.replace(cfg, model=best or cfg.model, eval_split="test", progress_bar=False,
                                   output_dir=os.path.join(cfg.output_dir, "test"))
    tester = Trainer(test_cfg)  # the same evaluation hook, on the test split
    return {k.removeprefix("eval/"): v for k, v in tester.evaluate_fn(tester).items()} | {"k": cfg.eval_samples}
'''),
    md("""
## Run the entries
"""),
    code('''
ours = {}
for dataset in DATASETS:
    for start, method, q in RUNS:
        if (dataset, start, method, q) in ours:
            continue
        ours[(dataset, start, method, q)] = m = paper_run(dataset, start, method, q)
        print(f"{dataset:9s} {start:4s} {method} q={q:g}: " + ", ".join(
            f"{k} {v:.3f}" for k, v in m.items() if k.startswith(("p@", "maj@"))))
'''),
    md("""
## The comparison, laid out like the paper's tables

Percent, ours / paper. Our columns use the $k$ of the config ($k = 16$ with the paper configs, $k = 2$ on the
CPU path, where the numbers only show that the pipeline runs).
"""),
    code('''
def pct(x):
    return "-" if x is None else f"{100 * x:.1f}"


def row(key):
    m, k = ours[key], ours[key]["k"]
    paper = PAPER.get(key, (None, None, None))
    fmt = lambda v: "-" if v is None else f"{v:g}"
    return {"dataset": key[0], "start": key[1], "method": key[2] if key[2] in ("grpo", "base") else
            f"{key[2]} q={key[3]:g}", "p@1": f"{pct(m['p@1'])} / {fmt(paper[0])}",
            f"p@{k} / p@16": f"{pct(m[f'p@{k}'])} / {fmt(paper[1])}",
            f"maj@{k} / m@16": f"{pct(m[f'maj@{k}'])} / {fmt(paper[2])}", "n test": int(m["n_examples"])}


k = next(iter(ours.values()))["k"]
cols = ["dataset", "start", "method", "p@1", f"p@{k} / p@16", f"maj@{k} / m@16", "n test"]
display(Markdown("**Table 1** (FinQA, cold start)"))
table([row(key) for key in ours if key[0] == "finqa" and key[1] == "cold"], cols)
display(Markdown("**Table 2** (cold-start GARL, no prompt, vs warm-start GRPO, prompted)"))
table([row(key) for key in ours if (key[1], key[2]) in (("cold", "garl"), ("warm", "grpo"))], cols)
display(Markdown("**Table 3** (warm start)"))
table([row(key) for key in ours if key[1] == "warm"], cols)
'''),
    md("""
**Reading it.** The paper's claims behind these tables: cold-start GARL at $q = 0.75$ escapes where GRPO and
$q \\le 0.5$ stay at zero (Table 1); it beats prompted GRPO on every dataset (Table 2, +11.6 to +24.4 p@1); in warm
start, GARL at low $q$ and PAFT at high $q$ beat GRPO by +6.6 to +14.4 m@16, while GARL collapses on HotpotQA
and MuSiQue (Table 3). Our CPU path cannot test any of them: it shows that the same configuration files drive
data loading, training, checkpoint selection and the paper's evaluation end to end. The paper reports no seeds or
error bars; with the GPU path, run several `seed` values per entry before comparing.
"""),
]

NOTEBOOKS = {
    "01_theory.ipynb": NB01,
    "02_escape_times.ipynb": NB02,
    "03_label_noise.ipynb": NB03,
    "04_estimators.ipynb": NB04,
    "05_schedules.ipynb": NB05,
    "06_llm_cold_start.ipynb": NB06,
    "07_llm_paper_runs.ipynb": NB07,
}


def build(name: str, cells) -> None:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):  # deterministic ids keep diffs small
        cell["id"] = f"c{i:02d}"
    nbformat.validate(nb)
    nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    only = sys.argv[1:]
    for name, cells in NOTEBOOKS.items():
        if not only or any(name.startswith(o) for o in only):
            build(name, cells)
            print("wrote", HERE / name)
